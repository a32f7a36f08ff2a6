"""Stock: signed movements as immutable ledger entries, and a level that never goes negative."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from forma3d.db.pool import Pool
from forma3d.store import stock


async def adjust(pool: Pool, tenant_id: uuid.UUID, delta: int, **kw: object) -> int:
    async with pool.acquire() as conn, conn.transaction():
        return await stock.adjust(conn, tenant_id, "CUBE", delta, **kw)  # type: ignore[arg-type]


async def ledger(pool: Pool, tenant_id: uuid.UUID) -> list[tuple[object, ...]]:
    return [tuple(r) for r in await pool.fetch(
        "SELECT transaction_type, direction, quantity, reason, message_id FROM stock_ledger"
        " WHERE tenant_id = $1 ORDER BY id", tenant_id)]


async def test_movements_add_up_to_the_level(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    message_id = uuid.uuid4()
    assert await adjust(db_pool, tenant_id, 4, transaction_type="PRODUCED", reason="batch",
                        message_id=message_id) == 4
    assert await adjust(db_pool, tenant_id, -3, transaction_type="CONSUMED") == 1
    assert await ledger(db_pool, tenant_id) == [("PRODUCED", "IN", 4, "batch", message_id),
                                                ("CONSUMED", "OUT", 3, None, None)]


async def test_refused_movements_change_nothing(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await adjust(db_pool, tenant_id, 2)
    with pytest.raises(ValueError, match="would go negative"):
        await adjust(db_pool, tenant_id, -3)
    with pytest.raises(ValueError, match="must not be zero"):
        await adjust(db_pool, tenant_id, 0)
    assert await db_pool.fetchval("SELECT quantity FROM stock_levels WHERE tenant_id = $1",
                                  tenant_id) == 2
    assert len(await ledger(db_pool, tenant_id)) == 1


async def test_concurrent_movements_are_not_lost(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    levels = await asyncio.gather(*(adjust(db_pool, tenant_id, 1) for _ in range(20)))
    assert sorted(levels) == list(range(1, 21))
