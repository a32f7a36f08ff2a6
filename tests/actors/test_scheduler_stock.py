"""The scheduler's replenishment period without Ray: its tick asks only tenants with Stock
Management on, through real entity hosts (LocalEntities); the tenant batches what is below its
minimum, and a restarted host (a scheduler tick again mid-run) makes no second batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from actors.local import LocalEntities
from actors.scheduler import STOCK_TENANTS, tick
from forma3d.db.pool import Pool
from forma3d.messaging.stock import ReplenishStock
from forma3d.store import stock
from forma3d.store.tenants import create_tenant
from tests.forma3d.store.stock_fixtures import product

ALL_DAY = {"stock_management_enabled": True, "stock_quiet_start": "00:00",
           "stock_quiet_end": "00:00"}


async def below_minimum(pool: Pool, settings: dict[str, object]) -> uuid.UUID:
    tenant_id = await create_tenant(pool, f"s-{uuid.uuid4().hex[:12]}", settings=settings)
    mapping_id = await product(pool, tenant_id)
    async with pool.acquire() as conn, conn.transaction():
        await stock.update_item(conn, tenant_id, mapping_id,
                                {"minimum": 2, "maximum": 4, "batch_size": 4})
    return tenant_id


async def batches(pool: Pool, tenant_id: uuid.UUID) -> list[int]:
    return [r["units"] for r in await pool.fetch(
        "SELECT units FROM stock_batches WHERE tenant_id = $1", tenant_id)]


async def test_ticks_batch_once_even_across_a_restart(database_url: str, db_pool: Pool) -> None:
    stocked = await below_minimum(db_pool, ALL_DAY)
    off = await below_minimum(db_pool, {**ALL_DAY, "stock_management_enabled": False})
    asked = [r["tenant_id"] for r in await db_pool.fetch(STOCK_TENANTS)]
    assert stocked in asked and off not in asked

    first = LocalEntities(database_url)
    try:
        await tick(db_pool, first, STOCK_TENANTS, ReplenishStock, timeout=30)
    finally:
        await first.close()
    assert await batches(db_pool, stocked) == [4]
    assert await batches(db_pool, off) == []

    again = LocalEntities(database_url)  # a new host: the entity reloads from PostgreSQL
    try:
        await tick(db_pool, again, STOCK_TENANTS, ReplenishStock, timeout=30)
    finally:
        await again.close()
    assert await batches(db_pool, stocked) == [4]
    scheduled = await db_pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1"
        " AND type = 'stock.replenishment-scheduled'", stocked)
    assert scheduled == 4


async def test_a_round_judges_quiet_hours_at_the_schedulers_time(database_url: str,
                                                                 db_pool: Pool) -> None:
    """The round's `at` (the scheduler's clock), not the host's wall clock, decides."""
    night = {"stock_management_enabled": True, "stock_quiet_start": "22:00",
             "stock_quiet_end": "06:00", "stock_time_zone": "Europe/Amsterdam"}
    tenant_id = await below_minimum(db_pool, night)
    others = LocalEntities(database_url)
    try:
        sql = f"SELECT '{tenant_id}'::uuid AS tenant_id"
        # 20:30 UTC is 21:30 in Amsterdam in winter; 21:30 UTC is 22:30 there.
        evening, late = (datetime(2026, 1, 15, h, 30, tzinfo=UTC) for h in (20, 21))
        assert await tick(db_pool, others, sql, ReplenishStock, timeout=30, at=evening) == 1
        assert await batches(db_pool, tenant_id) == []
        await tick(db_pool, others, sql, ReplenishStock, timeout=30, at=late)
    finally:
        await others.close()
    assert await batches(db_pool, tenant_id) == [4]
