"""The tenant's print queue: pause and resume, move and reorder, clear finished jobs, and the
lifecycle of stock jobs (which no order owns). One command at a time per tenant, each one
transaction with row locks and an audit event (before and after).

What touches a printer (pausing, resuming or stopping a print) is not done here: the answer
names the printer, and the caller asks the printer's entity once this change is committed, so
the farm's echo of it changes nothing more.
"""

from __future__ import annotations

import uuid
from typing import Any

from forma3d.db.pool import Connection
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.handlers.catalog import TenantScope
from forma3d.handlers.registry import Handlers
from forma3d.messaging.catalog import (
    CancelStockJob,
    ClearFinished,
    ForceStockJobStatus,
    HoldJob,
    MoveJob,
    MoveJobToFront,
    ReorderJobs,
)
from forma3d.messaging.printer import ReleasePrinter
from forma3d.messaging.refusals import Conflict, NotFound
from forma3d.store import outbox, print_jobs, queue

ON_PRINTER = frozenset({PrintJobStatus.ASSIGNED, PrintJobStatus.PRINTING})

HANDLERS: Handlers[TenantScope] = Handlers()


async def _job(conn: Connection, tenant: TenantScope, job_id: uuid.UUID) -> dict[str, Any]:
    job = await queue.locked_job(conn, tenant.tenant_id, job_id)
    if job is None:
        raise NotFound(f"print job {job_id} not found")
    return job


def _printer(job: dict[str, Any]) -> uuid.UUID | None:
    """The printer to ask about this job, if it is on one."""
    on_printer = job["printer_id"] is not None and job["status"] in ON_PRINTER
    return job["printer_id"] if on_printer else None


@HANDLERS.command(HoldJob)
async def hold(tenant: TenantScope, message: HoldJob, conn: Connection) -> uuid.UUID | None:
    job_id, held = message.print_job_id, message.held
    action = "pause" if held else "resume"
    job = await _job(conn, tenant, job_id)
    if job["status"] in queue.WAITING:
        if job["held"] == held:
            raise Conflict(f"print job {job_id} is already {'paused' if held else 'active'}")
        await queue.set_held(conn, job_id, held)
    elif job["status"] != PrintJobStatus.PRINTING:
        raise Conflict(f"print job {job_id} is {job['status']}; nothing to {action}")
    await queue.log_change(
        conn, tenant.tenant_id, action, [job_id], {"held": job["held"], "status": job["status"]},
        {"held": held} if job["status"] != PrintJobStatus.PRINTING else {"printer": action})
    return _printer(job)


async def _move(conn: Connection, tenant: TenantScope, job_id: uuid.UUID, index: int,
                action: str) -> None:
    jobs = await queue.waiting(conn, tenant.tenant_id)
    order = [job.id for job in jobs]
    if job_id not in order:
        job = await _job(conn, tenant, job_id)
        raise Conflict(f"print job {job_id} is {job['status']}; only queued jobs move")
    order.remove(job_id)
    order.insert(index, job_id)
    await queue.renumber(conn, tenant.tenant_id, jobs, order, action)


@HANDLERS.command(MoveJobToFront)
async def move_to_front(tenant: TenantScope, message: MoveJobToFront, conn: Connection) -> None:
    await _move(conn, tenant, message.print_job_id, 0, "move-to-front")


@HANDLERS.command(MoveJob)
async def move(tenant: TenantScope, message: MoveJob, conn: Connection) -> None:
    await _move(conn, tenant, message.print_job_id, message.position, "reorder")


@HANDLERS.command(ReorderJobs)
async def reorder(tenant: TenantScope, message: ReorderJobs, conn: Connection) -> None:
    ids = list(dict.fromkeys(message.print_job_ids))
    jobs = await queue.waiting(conn, tenant.tenant_id)
    waiting = {job.id for job in jobs}
    stray = [str(i) for i in ids if i not in waiting]
    if stray:
        raise Conflict(f"only queued jobs of this tenant move; not: {', '.join(stray)}")
    first = set(ids)
    await queue.renumber(conn, tenant.tenant_id, jobs,
                         ids + [job.id for job in jobs if job.id not in first], "bulk-reorder")


@HANDLERS.command(ClearFinished)
async def clear_finished(tenant: TenantScope, message: ClearFinished, conn: Connection) -> int:
    return await queue.clear_finished(conn, tenant.tenant_id)


async def _stock_job(conn: Connection, tenant: TenantScope, job_id: uuid.UUID) -> dict[str, Any]:
    job = await _job(conn, tenant, job_id)
    if job["order_id"] is not None:
        raise Conflict(f"print job {job_id} belongs to order {job['order_id']}; its order "
                       "owns it")
    return job


@HANDLERS.command(CancelStockJob)
async def cancel_stock_job(tenant: TenantScope, message: CancelStockJob,
                           conn: Connection) -> uuid.UUID | None:
    job_id = message.print_job_id
    job = await _stock_job(conn, tenant, job_id)
    before = dict(job)
    if not await print_jobs.set_job_status(conn, job, PrintJobStatus.CANCELLED,
                                           error=message.reason):
        raise Conflict(f"print job {job_id} is {before['status']}; it cannot be cancelled")
    await queue.log_change(conn, tenant.tenant_id, "cancel", [job_id],
                           {"status": before["status"]}, {"status": "CANCELLED"})
    return _printer(before)


@HANDLERS.command(ForceStockJobStatus)
async def force_stock_job_status(tenant: TenantScope, message: ForceStockJobStatus,
                                 conn: Connection) -> None:
    job_id, status = message.print_job_id, PrintJobStatus(message.status)
    job = await _stock_job(conn, tenant, job_id)
    printer = job["printer_id"]
    if not await print_jobs.force_job_status(conn, job, status, reason=message.reason,
                                             by=message.by):
        raise Conflict(f"print job {job_id} is already {status}")
    if printer is not None and job["printer_id"] is None:
        await outbox.send(conn, ReleasePrinter(tenant_id=tenant.tenant_id, printer_id=printer,
                                               print_job_id=job_id))
