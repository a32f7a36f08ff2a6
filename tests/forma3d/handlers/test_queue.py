"""The tenant's queue handlers: held, position and cleared, stock-job cancel and force, each
audited (no Ray, real PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.handlers import queue
from forma3d.messaging.catalog import (
    CancelStockJob,
    ClearFinished,
    ForceStockJobStatus,
    HoldJob,
    MoveJob,
    MoveJobToFront,
    ReorderJobs,
)
from forma3d.messaging.refusals import Conflict, NotFound
from tests.forma3d.handlers.conftest import TenantState, command, outbox, print_file

pytestmark = pytest.mark.db


async def job(pool: Pool, tenant_id: uuid.UUID, status: str = "QUEUED", position: int = 0,
              printer_id: uuid.UUID | None = None, order_id: uuid.UUID | None = None
              ) -> uuid.UUID:
    job_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, order_id, copy_number,
                                   file_id, status, position, printer_id)
           VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9)""",
        job_id, tenant_id, f"q:{job_id}", "ORDER" if order_id else "STOCK", order_id,
        await print_file(pool, tenant_id), status, position, printer_id)
    return job_id


async def printer(pool: Pool, tenant_id: uuid.UUID) -> uuid.UUID:
    printer_id = uuid.uuid4()
    await pool.execute("INSERT INTO printers (id, tenant_id, name) VALUES ($1, $2, 'p')",
                       printer_id, tenant_id)
    return printer_id


async def row(pool: Pool, job_id: uuid.UUID) -> dict[str, Any]:
    found = await pool.fetchrow("SELECT * FROM print_jobs WHERE id = $1", job_id)
    assert found is not None
    return dict(found.items())


async def audit(pool: Pool, tenant_id: uuid.UUID, kind: str = "print-job.queue-changed"
                ) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT data FROM event_log WHERE tenant_id = $1 AND type = $2"
                            " ORDER BY id", tenant_id, kind)
    return [r["data"] for r in rows]


async def order_of_queue(pool: Pool, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await pool.fetch("SELECT id FROM print_jobs WHERE tenant_id = $1"
                            " AND status = 'QUEUED' ORDER BY position, created_at, id", tenant_id)
    return [r["id"] for r in rows]


async def test_pause_and_resume_a_waiting_job_or_a_print(
        tenant: TenantState, db_pool: Pool) -> None:
    t = tenant.tenant_id
    waiting = await job(db_pool, t)
    printing = await job(db_pool, t, "PRINTING", printer_id=await printer(db_pool, t))
    done = await job(db_pool, t, "COMPLETED")

    assert await command(tenant, queue.hold, HoldJob(tenant_id=t, print_job_id=waiting,
                                                     held=True)) is None
    assert (await row(db_pool, waiting))["held"] is True
    with pytest.raises(Conflict, match="is already paused"):
        await command(tenant, queue.hold, HoldJob(tenant_id=t, print_job_id=waiting, held=True))
    await command(tenant, queue.hold, HoldJob(tenant_id=t, print_job_id=waiting, held=False))
    assert (await row(db_pool, waiting))["held"] is False

    on = await command(tenant, queue.hold, HoldJob(tenant_id=t, print_job_id=printing,
                                                   held=True))
    assert on == (await row(db_pool, printing))["printer_id"]  # the caller asks the printer
    assert (await row(db_pool, printing))["held"] is False
    with pytest.raises(Conflict, match="is COMPLETED; nothing to resume"):
        await command(tenant, queue.hold, HoldJob(tenant_id=t, print_job_id=done, held=False))
    with pytest.raises(NotFound):
        await command(tenant, queue.hold, HoldJob(tenant_id=t, print_job_id=uuid.uuid4(),
                                                  held=True))
    assert [(e["action"], e["after"]) for e in await audit(db_pool, t)] == [
        ("pause", {"held": True}), ("resume", {"held": False}), ("pause", {"printer": "pause"})]


async def test_move_reorder_and_bulk_reorder_write_only_what_moves(
        tenant: TenantState, db_pool: Pool) -> None:
    t = tenant.tenant_id
    a, b, c, d = [await job(db_pool, t, position=n) for n in range(4)]
    printing = await job(db_pool, t, "PRINTING")

    await command(tenant, queue.move_to_front, MoveJobToFront(tenant_id=t, print_job_id=d))
    assert await order_of_queue(db_pool, t) == [d, a, b, c]
    await command(tenant, queue.move, MoveJob(tenant_id=t, print_job_id=a, position=2))
    assert await order_of_queue(db_pool, t) == [d, b, a, c]
    await command(tenant, queue.reorder, ReorderJobs(tenant_id=t, print_job_ids=[c, a, c]))
    assert await order_of_queue(db_pool, t) == [c, a, d, b]

    with pytest.raises(Conflict, match="is PRINTING; only queued jobs move"):
        await command(tenant, queue.move, MoveJob(tenant_id=t, print_job_id=printing,
                                                  position=0))
    with pytest.raises(Conflict, match=f"not: {printing}"):
        await command(tenant, queue.reorder, ReorderJobs(tenant_id=t,
                                                         print_job_ids=[a, printing]))
    events = await audit(db_pool, t)
    assert [e["action"] for e in events] == ["move-to-front", "reorder", "bulk-reorder"]
    assert events[1]["before"] == {str(b): 2, str(a): 1}
    assert events[1]["after"] == {str(b): 1, str(a): 2}


async def test_clear_finished_hides_each_finished_job_once(
        tenant: TenantState, db_pool: Pool) -> None:
    t = tenant.tenant_id
    for status in ("COMPLETED", "FAILED", "CANCELLED", "QUEUED"):
        await job(db_pool, t, status)
    assert await command(tenant, queue.clear_finished, ClearFinished(tenant_id=t)) == 3
    assert await command(tenant, queue.clear_finished, ClearFinished(tenant_id=t)) == 0
    [event] = await audit(db_pool, t)
    assert event["after"] == {"cleared": True, "count": 3}


async def test_cancel_a_stock_job_names_its_printer_and_leaves_order_jobs_alone(
        tenant: TenantState, db_pool: Pool) -> None:
    t = tenant.tenant_id
    printer_id = await printer(db_pool, t)
    printing = await job(db_pool, t, "PRINTING", printer_id=printer_id)
    waiting = await job(db_pool, t)
    order_id = uuid.uuid4()
    await db_pool.execute("INSERT INTO orders (id, tenant_id, shopify_order_id, name)"
                          " VALUES ($1, $2, 7, '#7')", order_id, t)
    of_order = await job(db_pool, t, order_id=order_id)

    assert await command(tenant, queue.cancel_stock_job,
                         CancelStockJob(tenant_id=t, print_job_id=printing)) == printer_id
    assert await command(tenant, queue.cancel_stock_job,
                         CancelStockJob(tenant_id=t, print_job_id=waiting)) is None
    assert (await row(db_pool, waiting))["status"] == "CANCELLED"
    with pytest.raises(Conflict, match="is CANCELLED; it cannot be cancelled"):
        await command(tenant, queue.cancel_stock_job,
                      CancelStockJob(tenant_id=t, print_job_id=waiting))
    with pytest.raises(Conflict, match="its order owns it"):
        await command(tenant, queue.cancel_stock_job,
                      CancelStockJob(tenant_id=t, print_job_id=of_order))
    assert (await row(db_pool, of_order))["status"] == "QUEUED"
    assert [e["action"] for e in await audit(db_pool, t)] == ["cancel", "cancel"]
    assert len(await audit(db_pool, t, "print-job.cancelled")) == 2


async def test_force_a_stock_job_status_audits_and_frees_its_printer(
        tenant: TenantState, db_pool: Pool) -> None:
    t = tenant.tenant_id
    printer_id = await printer(db_pool, t)
    printing = await job(db_pool, t, "PRINTING", printer_id=printer_id)
    message = ForceStockJobStatus(tenant_id=t, print_job_id=printing, status="FAILED",
                                  reason="bed fire drill", by="api key ops (f3d_x)")

    await command(tenant, queue.force_stock_job_status, message)
    forced = await row(db_pool, printing)
    assert (forced["status"], forced["printer_id"], forced["error"]) == (
        "FAILED", None, "forced: bed fire drill")
    [entry] = await audit(db_pool, t, "print-job.force-status")
    assert entry["by"] == "api key ops (f3d_x)" and entry["after"] == {"status": "FAILED"}
    assert entry["before"] == {"status": "PRINTING", "printer_id": str(printer_id)}
    assert await outbox(db_pool, t) == [("printer", "printer.release", {
        "printer_id": str(printer_id), "print_job_id": str(printing)})]
    with pytest.raises(Conflict, match="is already FAILED"):
        await command(tenant, queue.force_stock_job_status, message)
