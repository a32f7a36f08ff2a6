"""Print jobs: smart dispatch in PostgreSQL, and the status changes of a job.

A ready printer claims the best queued job its tags fit: matching is `matching.best_job` over the
best-first candidates; the claim (QUEUED -> ASSIGNED) and the release of a job the printer could
not start (ASSIGNED -> QUEUED) go through PRINT_JOB_MACHINE and record their
print-job.status-changed event, and are conditional updates (`... WHERE status = 'QUEUED'`), so
of two printers racing for one job exactly one gets a row back, and the partial unique index
`print_jobs_one_per_printer` refuses a second active job on one printer even if two claims for
it ever ran at once. Both hold under any concurrency, because PostgreSQL, not a lock in memory,
decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from forma3d.db.pool import Connection, Pool, connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.printing.jobs import PrintJobSpec
from forma3d.domain.printing.matching import best_job
from forma3d.domain.printing.states import PRINT_JOB_MACHINE, PrintJobStatus
from forma3d.domain.statemachine import IllegalTransition
from forma3d.store.events import record

# A job of an order an operator holds waits with its order.
NOT_HELD_ORDER = """NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = print_jobs.order_id
                                     AND o.hold_reason IS NOT NULL)"""

CANDIDATES = f"""SELECT id, purpose, priority, position, created_at, required_tags FROM print_jobs
    WHERE tenant_id = $1 AND status = 'QUEUED' AND NOT held AND farm_queue_item_id IS NULL
      AND {NOT_HELD_ORDER}
    ORDER BY purpose = 'STOCK', priority DESC, position, created_at, id LIMIT $2 OFFSET $3"""

CLAIM = f"""UPDATE print_jobs SET status = 'ASSIGNED', printer_id = $3, assigned_at = now(),
        status_at = now(), updated_at = now()
    WHERE tenant_id = $1 AND id = $2 AND status = 'QUEUED' AND NOT held
      AND farm_queue_item_id IS NULL AND {NOT_HELD_ORDER}
    RETURNING *"""

RELEASE = """UPDATE print_jobs SET status = 'QUEUED', printer_id = NULL, assigned_at = NULL,
        error = $3, status_at = now(), updated_at = now()
    WHERE id = $1 AND printer_id = $2 AND status = 'ASSIGNED'
    RETURNING *"""


class PrinterBusy(Exception):
    """The printer already holds an ASSIGNED or PRINTING job."""


async def active_job(db: Pool | Connection, printer_id: uuid.UUID) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT * FROM print_jobs WHERE printer_id = $1"
                            " AND status IN ('ASSIGNED', 'PRINTING')", printer_id)
    return record_to_dict(row) if row else None


async def claim(db: Pool | Connection, tenant_id: uuid.UUID, printer: Mapping[str, Any], *,
                page: int = 200, max_pages: int = 10) -> dict[str, Any] | None:
    """Take the best job the printer fits (QUEUED -> ASSIGNED, with its event), or None;
    raises PrinterBusy if the printer holds one.

    Candidates are read without locks; a candidate another printer took in the meantime makes
    the conditional update return nothing, and the next best is tried. Each try is its own
    transaction (a savepoint inside the caller's), so a refused one leaves nothing behind.
    """
    printer_id = uuid.UUID(str(printer["id"]))
    PRINT_JOB_MACHINE.check(PrintJobStatus.QUEUED, PrintJobStatus.ASSIGNED)
    async with connection(db) as conn:
        for number in range(max_pages):
            rows = [record_to_dict(r) for r in await conn.fetch(CANDIDATES, tenant_id, page,
                                                                number * page)]
            tried: set[Any] = set()
            while True:
                job = best_job(printer, [r for r in rows if r["id"] not in tried])
                if job is None:
                    break
                tried.add(job["id"])
                try:
                    async with conn.transaction():
                        row = await conn.fetchrow(CLAIM, tenant_id, job["id"], printer_id)
                        if row is not None:
                            taken = record_to_dict(row)
                            await _record_status(conn, taken, PrintJobStatus.QUEUED,
                                                 PrintJobStatus.ASSIGNED)
                            return taken
                except asyncpg.UniqueViolationError:
                    raise PrinterBusy(f"printer {printer_id} already has a job") from None
            if len(rows) < page:
                return None
    return None


async def release(db: Pool | Connection, job_id: uuid.UUID, printer_id: uuid.UUID,
                  reason: str) -> bool:
    """Put a job the printer could not start back in the queue (ASSIGNED -> QUEUED, with its
    event). False if the printer no longer holds the job (an operator or its order moved it);
    IllegalTransition, naming both states, if the printer holds it in any other status."""
    async with connection(db) as conn, conn.transaction():
        row = await conn.fetchrow(RELEASE, job_id, printer_id, reason)
        if row is not None:
            await _record_status(conn, record_to_dict(row), PrintJobStatus.ASSIGNED,
                                 PrintJobStatus.QUEUED)
            return True
        now = await conn.fetchrow("SELECT status, printer_id FROM print_jobs WHERE id = $1",
                                  job_id)
        if now is None or now["printer_id"] != printer_id:
            return False
        raise IllegalTransition(f"{PRINT_JOB_MACHINE.name} release", now["status"],
                                PrintJobStatus.QUEUED)


async def record_start(conn: Connection, job_id: uuid.UUID, farm_job_uid: str | None,
                       farm_job_id: int | None, farm_printer_id: int | None) -> None:
    """The farm job a printer started for this job (CreateJob, or adopted after a crash); the
    status itself (PRINTING) is the order's to write, or set_job_status's for a stock job."""
    await conn.execute(
        "UPDATE print_jobs SET farm_job_uid = $2, farm_job_id = coalesce($3, farm_job_id),"
        " farm_printer_id = $4, updated_at = now() WHERE id = $1",
        job_id, farm_job_uid, farm_job_id, farm_printer_id)


async def confirm_alive(db: Pool | Connection, job_id: uuid.UUID) -> None:
    """The farm still runs the job: not stuck again until another quiet period has passed."""
    await db.execute("UPDATE print_jobs SET updated_at = now() WHERE id = $1", job_id)


async def set_job_status(conn: Connection, job: dict[str, Any], status: PrintJobStatus,
                         **fields: Any) -> bool:
    """Move a job if its transition table allows it and the row is still in the status the
    caller saw; False (and nothing written) otherwise, so stale or repeated farm updates are
    harmless."""
    current = PrintJobStatus(job["status"])
    if current == status or not PRINT_JOB_MACHINE.can(current, status):
        return False
    sets = "".join(f", {k} = ${i}" for i, k in enumerate(fields, start=4))
    moved = await conn.fetchval(
        f"UPDATE print_jobs SET status = $2, updated_at = now(){sets}"
        " WHERE id = $1 AND status = $3 RETURNING true",
        job["id"], status.value, current.value, *fields.values())
    if not moved:
        return False
    await _record_status(conn, job, current, status, fields.get("error"))
    job["status"] = status.value
    return True


async def _record_status(conn: Connection, job: Mapping[str, Any], previous: PrintJobStatus,
                         status: PrintJobStatus, error: str | None = None) -> None:
    """print-job.status-changed, and print-job.completed/failed/cancelled when it ends."""
    data = {"print_job_id": str(job["id"]), "order_id": str(job["order_id"]),
            "line_item_id": str(job["line_item_id"]), "previous_status": previous.value,
            "new_status": status.value}
    if job.get("printer_id") is not None:
        data["printer_id"] = str(job["printer_id"])
    await record(conn, EventType.PRINT_JOB_STATUS_CHANGED, job["tenant_id"],
                 data, subject=("print_job", job["id"]))
    follow_up = {PrintJobStatus.COMPLETED: EventType.PRINT_JOB_COMPLETED,
                 PrintJobStatus.FAILED: EventType.PRINT_JOB_FAILED,
                 PrintJobStatus.CANCELLED: EventType.PRINT_JOB_CANCELLED}.get(status)
    if follow_up is not None:
        extra = {"error_message": error or "unknown"} if status == PrintJobStatus.FAILED else {}
        await record(conn, follow_up, job["tenant_id"],
                     {k: v for k, v in data.items() if k not in ("previous_status", "new_status")}
                     | extra, subject=("print_job", job["id"]))


# --- written by the order entity -------------------------------------------------------------


async def order_jobs(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID,
                     *statuses: PrintJobStatus) -> list[dict[str, Any]]:
    """The order's jobs in the given statuses, in job-key order."""
    rows = await conn.fetch(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND order_id = $2 AND status = ANY($3)"
        " ORDER BY job_key", tenant_id, order_id, [s.value for s in statuses])
    return [record_to_dict(r) for r in rows]


async def lock_order_job(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID,
                         job_id: uuid.UUID) -> dict[str, Any] | None:
    """One of the order's jobs, row-locked until the transaction ends; None if not the order's."""
    row = await conn.fetchrow(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND order_id = $2 AND id = $3"
        " FOR UPDATE", tenant_id, order_id, job_id)
    return record_to_dict(row) if row else None


async def insert_order_jobs(conn: Connection, tenant_id: uuid.UUID, line_item_id: uuid.UUID,
                            specs: Sequence[PrintJobSpec], tags: Mapping[str, list[str]],
                            max_attempts: int) -> None:
    """Create a line item's jobs PENDING; a key that exists already is left as it is."""
    await conn.executemany(
        """INSERT INTO print_jobs (id, tenant_id, job_key, order_id, line_item_id, part_id,
                                   copy_number, file_id, required_tags, max_attempts)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (tenant_id, job_key) DO NOTHING""",
        [(uuid.uuid4(), tenant_id, s.key, uuid.UUID(str(s.order_id)), line_item_id,
          uuid.UUID(s.part_id), s.copy_number, uuid.UUID(s.file_id), tags.get(s.part_id, []),
          max_attempts) for s in specs])


async def line_item_jobs(conn: Connection, tenant_id: uuid.UUID,
                         line_item_id: uuid.UUID) -> list[dict[str, Any]]:
    """A line item's jobs that still count (not withdrawn), with their part, in key order."""
    rows = await conn.fetch(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND line_item_id = $2 AND NOT withdrawn"
        " ORDER BY job_key FOR UPDATE", tenant_id, line_item_id)
    return [record_to_dict(r) for r in rows]


async def withdraw(conn: Connection, job: dict[str, Any], reason: str) -> bool:
    """Cancel a job whose unit an edit or refund took away: CANCELLED and withdrawn, so it no
    longer counts towards its line item. False if it had started (or moved) meanwhile."""
    if job["status"] not in (PrintJobStatus.PENDING, PrintJobStatus.QUEUED):
        return False
    done = await set_job_status(conn, job, PrintJobStatus.CANCELLED, error=reason,
                                withdrawn=True)
    if done:
        job["withdrawn"] = True
    return done


async def set_queue_item(conn: Connection, job_id: uuid.UUID, queue_item_id: int) -> bool:
    """The SimplyPrint queue item a QUEUED job was placed as (once per attempt)."""
    done = await conn.fetchval(
        "UPDATE print_jobs SET farm_queue_item_id = $2, updated_at = now()"
        " WHERE id = $1 AND status = 'QUEUED' AND farm_queue_item_id IS NULL RETURNING true",
        job_id, queue_item_id)
    return bool(done)


async def force_job_status(conn: Connection, job: dict[str, Any], status: PrintJobStatus, *,
                           reason: str, by: str) -> bool:
    """Admin override past the transition table: the job (locked by the caller) takes `status`;
    it leaves its printer unless the new status is on one. Audited with who, why, before and
    after (`print-job.force-status`) besides the usual status events. False if the job already
    had that status (or moved meanwhile)."""
    current = PrintJobStatus(job["status"])
    if current == status:
        return False
    keep_printer = status in (PrintJobStatus.ASSIGNED, PrintJobStatus.PRINTING)
    moved = await conn.fetchval(
        "UPDATE print_jobs SET status = $2, status_at = now(), updated_at = now(),"
        " printer_id = CASE WHEN $3 THEN printer_id END, error = $4"
        " WHERE id = $1 AND status = $5 RETURNING true",
        job["id"], status.value, keep_printer, f"forced: {reason}", current.value)
    if not moved:
        return False
    await _record_status(conn, job, current, status, f"forced: {reason}")
    await record(conn, EventType.PRINT_JOB_FORCE_STATUS, job["tenant_id"], {
        "print_job_id": str(job["id"]), "reason": reason, "by": by,
        "before": {"status": current.value, "printer_id": str(job["printer_id"])},
        "after": {"status": status.value}}, subject=("print_job", job["id"]))
    job.update(status=status.value, printer_id=job["printer_id"] if keep_printer else None)
    return True
