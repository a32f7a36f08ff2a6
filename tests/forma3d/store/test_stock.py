"""Stock in PostgreSQL: ledger entries with running balances (the level is derived, never
overwritten), refusals that change nothing, the immutable ledger, and stock batches moving
through their machine with their events and the PRODUCED entry."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from forma3d.db.pool import Pool
from forma3d.domain.inventory.ledger import InsufficientStock, LedgerError, direction_of
from forma3d.domain.inventory.states import BatchOrigin, LedgerType, ReferenceType, StockBatchStatus
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.domain.statemachine import IllegalTransition
from forma3d.store import print_jobs, stock, stock_batches
from tests.forma3d.store.stock_fixtures import product

pytestmark = pytest.mark.db
USER = stock.Reference(ReferenceType.USER, "ops@example.com", created_by="ops@example.com")


async def move(pool: Pool, tenant_id: uuid.UUID, mapping_id: uuid.UUID, kind: LedgerType,
               quantity: int, reason: str | None = "count") -> stock.Entry:
    async with pool.acquire() as conn, conn.transaction():
        return await stock.record(conn, tenant_id, mapping_id, kind, abs(quantity), USER,
                                  direction=direction_of(kind, quantity), reason=reason)


async def events(pool: Pool, tenant_id: uuid.UUID, prefix: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT type, data FROM event_log WHERE tenant_id = $1"
                            " AND type LIKE $2 ORDER BY occurred_at, id", tenant_id, prefix + "%")
    return [{"type": r["type"], **r["data"]} for r in rows]


async def test_levels_are_the_last_balance_and_the_sum_of_the_entries(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    mapping_id = await product(db_pool, tenant_id)
    await move(db_pool, tenant_id, mapping_id, LedgerType.ADJUSTED, 6)
    await move(db_pool, tenant_id, mapping_id, LedgerType.SCRAPPED, 1, "warped")
    entry = await move(db_pool, tenant_id, mapping_id, LedgerType.ADJUSTED, -2)
    assert (entry.balance.on_hand, entry.balance.available) == (3, 3)
    level = await stock.level(db_pool, tenant_id, mapping_id)
    assert level is not None
    assert (level["on_hand"], level["reserved"], level["available"]) == (3, 0, 3)
    signed = await db_pool.fetchval(
        "SELECT sum(CASE direction WHEN 'IN' THEN quantity ELSE -quantity END)"
        " FROM stock_ledger WHERE tenant_id = $1", tenant_id)
    assert signed == 3
    changes = await events(db_pool, tenant_id, "stock.level-changed")
    assert [(e["entry_type"], e["on_hand"]) for e in changes] == [
        ("ADJUSTED", 6), ("SCRAPPED", 5), ("ADJUSTED", 3)]


async def test_refused_movements_change_nothing(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    mapping_id = await product(db_pool, tenant_id)
    await move(db_pool, tenant_id, mapping_id, LedgerType.ADJUSTED, 2)
    with pytest.raises(InsufficientStock, match="2 available"):
        await move(db_pool, tenant_id, mapping_id, LedgerType.SCRAPPED, 3, "dropped")
    with pytest.raises(LedgerError, match="needs a reason"):
        await move(db_pool, tenant_id, mapping_id, LedgerType.SCRAPPED, 1, None)
    with pytest.raises(LookupError):
        await move(db_pool, tenant_id, uuid.uuid4(), LedgerType.ADJUSTED, 1)
    assert await db_pool.fetchval("SELECT count(*) FROM stock_ledger WHERE tenant_id = $1",
                                  tenant_id) == 1


async def test_ledger_entries_cannot_be_edited(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    mapping_id = await product(db_pool, tenant_id)
    await move(db_pool, tenant_id, mapping_id, LedgerType.ADJUSTED, 2)
    with pytest.raises(asyncpg.RaiseError, match="immutable"):
        await db_pool.execute("UPDATE stock_ledger SET quantity = 9 WHERE tenant_id = $1",
                              tenant_id)


async def test_settings_change_with_an_event_and_refuse_max_below_min(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    mapping_id = await product(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        row = await stock.update_item(conn, tenant_id, mapping_id,
                                      {"minimum": 3, "maximum": 8, "batch_size": 4})
    assert (row["minimum"], row["maximum"], row["batch_size"]) == (3, 8, 4)
    with pytest.raises(asyncpg.CheckViolationError):
        async with db_pool.acquire() as conn, conn.transaction():
            await stock.update_item(conn, tenant_id, mapping_id, {"maximum": 2})
    (changed,) = await events(db_pool, tenant_id, "stock.settings-changed")
    assert changed["before"]["minimum"] == 0 and changed["after"]["maximum"] == 8


async def _batch(pool: Pool, tenant_id: uuid.UUID, mapping_id: uuid.UUID,
                 units: int) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        mapping = await stock.mapping(conn, tenant_id, mapping_id)
        assert mapping is not None
        return await stock_batches.create(conn, tenant_id, stock_batches.NewBatch(
            mapping, units, BatchOrigin.REPLENISHMENT), max_attempts=3, tags={})


async def _finish(pool: Pool, tenant_id: uuid.UUID, batch: dict[str, Any],
                  statuses: list[PrintJobStatus]) -> StockBatchStatus:
    async with pool.acquire() as conn, conn.transaction():
        for job, status in zip(await stock_batches.jobs(conn, tenant_id, batch["id"]), statuses,
                               strict=False):
            await print_jobs.set_job_status(conn, job, status)
        locked = await stock_batches.lock(conn, tenant_id, batch["id"])
        assert locked is not None
        mapping = await stock.mapping(conn, tenant_id, batch["mapping_id"])
        assert mapping is not None
        return await stock_batches.settle(conn, locked, mapping)


async def test_a_batch_completes_once_every_job_is_done_adding_its_units(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    mapping_id = await product(db_pool, tenant_id, parts=2, copies=2)
    batch = await _batch(db_pool, tenant_id, mapping_id, 3)
    jobs = await stock_batches.jobs(db_pool, tenant_id, batch["id"])
    assert len(jobs) == 12 and {j["purpose"] for j in jobs} == {"STOCK"}
    assert {j["status"] for j in jobs} == {"QUEUED"}
    scheduled = await events(db_pool, tenant_id, "stock.replenishment-scheduled")
    assert sorted(e["print_job_id"] for e in scheduled) == sorted(str(j["id"]) for j in jobs)
    level = await stock.level(db_pool, tenant_id, mapping_id)
    assert level is not None and level["in_production"] == 3

    done = [PrintJobStatus.COMPLETED] * 11
    assert await _finish(db_pool, tenant_id, batch, done) == StockBatchStatus.IN_PROGRESS
    assert (await stock.level(db_pool, tenant_id, mapping_id) or {})["on_hand"] == 0
    assert await _finish(db_pool, tenant_id, batch, [PrintJobStatus.COMPLETED] * 12) \
        == StockBatchStatus.COMPLETED
    assert await _finish(db_pool, tenant_id, batch, []) == StockBatchStatus.COMPLETED  # again
    level = await stock.level(db_pool, tenant_id, mapping_id)
    assert level is not None
    assert (level["on_hand"], level["in_production"]) == (3, 0)
    (completed,) = await events(db_pool, tenant_id, "stock.batch-completed")
    assert (completed["units_produced"], completed["completed_jobs"]) == (3, 12)
    statuses = [e["new_status"] for e in await events(db_pool, tenant_id,
                                                      "stock.batch-status-changed")]
    assert statuses == ["IN_PROGRESS", "COMPLETED"]
    produced = await db_pool.fetch("SELECT entry_type, quantity, stock_batch_id FROM stock_ledger"
                                   " WHERE tenant_id = $1", tenant_id)
    assert [tuple(r) for r in produced] == [("PRODUCED", 3, batch["id"])]


async def test_a_cancelled_batch_keeps_whole_units_already_printed(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    mapping_id = await product(db_pool, tenant_id)
    batch = await _batch(db_pool, tenant_id, mapping_id, 3)
    async with db_pool.acquire() as conn, conn.transaction():
        first = (await stock_batches.jobs(conn, tenant_id, batch["id"]))[0]
        await print_jobs.set_job_status(conn, first, PrintJobStatus.COMPLETED)
        locked = await stock_batches.lock(conn, tenant_id, batch["id"])
        mapping = await stock.mapping(conn, tenant_id, mapping_id)
        assert locked is not None and mapping is not None
        await stock_batches.cancel(conn, locked, mapping, "not needed")
        assert locked["status"] == "CANCELLED" and locked["units_produced"] == 1
        with pytest.raises(IllegalTransition, match=r"CANCELLED.*COMPLETED"):
            await stock_batches.set_status(conn, locked, StockBatchStatus.COMPLETED)
    statuses = sorted(j["status"] for j in await stock_batches.jobs(db_pool, tenant_id,
                                                                   batch["id"]))
    assert statuses == ["CANCELLED", "CANCELLED", "COMPLETED"]
    assert (await stock.level(db_pool, tenant_id, mapping_id) or {})["on_hand"] == 1
