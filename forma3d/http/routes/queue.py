"""Smart-queue operations on print jobs: cancel, pause, resume, move to front, reorder, bulk
reorder, clear finished, admin force-status, and the per-printer matching explanation.

Queue order (priority, position, held, cleared) belongs to no entity: each change is one
transaction with row locks, plus an event-log entry with before and after. What touches a
printer (stopping, pausing or resuming a print) is asked of the printer's entity after the
job's new state is committed, so the farm's echo of it (job.cancelled) changes nothing more.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.printing.matching import explain
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one
from forma3d.http.routes.print_jobs import PRINT_JOBS, TAG, PrintJobOut
from forma3d.messaging.printer import ControlPrinter
from forma3d.store import orders as store
from forma3d.store import print_jobs
from forma3d.store.apikeys import hash_key
from forma3d.store.events import record

ON_PRINTER = frozenset({"ASSIGNED", "PRINTING"})
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")


class Reorder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=0, le=1_000_000, description="0-based place in the queue")


class BulkReorder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    print_job_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)


class ForceStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: PrintJobStatus
    reason: str = Field(min_length=3, max_length=500)


class Cleared(BaseModel):
    cleared: int


class PrinterVerdict(BaseModel):
    printer_id: uuid.UUID
    name: str
    matches: bool
    fits: bool
    reasons: list[str]
    missing_tags: list[str]


class Matching(BaseModel):
    print_job_id: uuid.UUID
    status: PrintJobStatus
    required_tags: list[str]
    printers: list[PrinterVerdict]


async def _locked(conn: Connection, tenant_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow("SELECT * FROM print_jobs WHERE tenant_id = $1 AND id = $2"
                              " FOR UPDATE", tenant_id, job_id)
    if row is None:
        raise Problem(404, f"print job {job_id} not found")
    return record_to_dict(row)


async def _logged(conn: Connection, tenant_id: uuid.UUID, action: str, ids: list[Any],
                  before: dict[str, Any], after: dict[str, Any]) -> None:
    await record(conn, EventType.PRINT_JOB_QUEUE_CHANGED, tenant_id, {
        "action": action, "print_job_ids": [str(i) for i in ids], "before": before,
        "after": after}, subject=("print_job", ids[0]) if len(ids) == 1 else None)


async def _printer(request: Request, job: dict[str, Any], action: str, comment: str) -> None:
    """Ask the job's printer entity to act on the farm (after the job's change committed)."""
    if job["printer_id"] is None or job["status"] not in ON_PRINTER:
        return
    await deps(request).require_runtime().router.call(ControlPrinter.model_validate({
        "tenant_id": job["tenant_id"], "printer_id": job["printer_id"], "action": action,
        "comment": comment}))


async def _answer(request: Request, job_id: uuid.UUID) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, PRINT_JOBS, tenant_of(request), job_id, "print job")


async def _who(request: Request) -> str:
    """The API key that asked, by name and prefix (never the key), for the audit entry."""
    auth = request.headers.get("authorization", "")
    key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get(
        "x-api-key", "")
    row = await deps(request).pool.fetchrow(
        "SELECT name, prefix FROM api_keys WHERE key_hash = $1", hash_key(key))
    return f"api key {row['name']} ({row['prefix']})" if row else "unknown key"


def _job_id(request: Request) -> uuid.UUID:
    return parse_id(request.path_params["job_id"], "print job")


@api.route("POST", "/print-jobs/{job_id}/cancel", "Cancel a job for good (stops its printer if "
           "it is printing)", response=PrintJobOut, tags=(TAG,))
async def cancel_job(request: Request) -> Row:
    tenant_id, job_id = tenant_of(request), _job_id(request)
    async with deps(request).pool.acquire() as conn, conn.transaction():
        job = await _locked(conn, tenant_id, job_id)
        before = dict(job)
        if not await print_jobs.set_job_status(conn, job, PrintJobStatus.CANCELLED,
                                          error="cancelled by an operator"):
            raise Problem(409, f"print job {job_id} is {job['status']}; it cannot be cancelled")
        if job["order_id"] is not None:
            await store.recompute(conn, tenant_id, job["order_id"])
        await _logged(conn, tenant_id, "cancel", [job_id], {"status": before["status"]},
                      {"status": "CANCELLED"})
    await _printer(request, before, "cancel", "cancelled by an operator")
    return await _answer(request, job_id)


async def _hold(request: Request, held: bool) -> Row:
    tenant_id, job_id = tenant_of(request), _job_id(request)
    action = "pause" if held else "resume"
    async with deps(request).pool.acquire() as conn, conn.transaction():
        job = await _locked(conn, tenant_id, job_id)
        if job["status"] in ("PENDING", "QUEUED"):
            if job["held"] == held:
                already = "paused" if held else "active"
                raise Problem(409, f"print job {job_id} is already {already}")
            await conn.execute("UPDATE print_jobs SET held = $2, updated_at = now() WHERE id = $1",
                               job_id, held)
        elif job["status"] != "PRINTING":
            raise Problem(409, f"print job {job_id} is {job['status']}; nothing to {action}")
        await _logged(conn, tenant_id, action, [job_id],
                      {"held": job["held"], "status": job["status"]},
                      {"held": held} if job["status"] != "PRINTING" else {"printer": action})
    await _printer(request, job, action, f"{action}d by an operator")
    return await _answer(request, job_id)


@api.route("POST", "/print-jobs/{job_id}/pause", "Pause a job: held in the queue, or the print "
           "paused on its printer", response=PrintJobOut, tags=(TAG,))
async def pause_job(request: Request) -> Row:
    return await _hold(request, True)


@api.route("POST", "/print-jobs/{job_id}/resume", "Resume a paused job (queue or printer)",
           response=PrintJobOut, tags=(TAG,))
async def resume_job(request: Request) -> Row:
    return await _hold(request, False)


async def _queued(conn: Connection, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tenant's waiting jobs in queue order, locked (one reorder at a time per tenant)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", str(tenant_id))
    return [record_to_dict(r) for r in await conn.fetch(
        "SELECT id, position FROM print_jobs WHERE tenant_id = $1"
        " AND status IN ('PENDING', 'QUEUED') ORDER BY position, created_at, id FOR UPDATE",
        tenant_id)]


async def _renumber(conn: Connection, tenant_id: uuid.UUID, rows: list[dict[str, Any]],
                    order: list[uuid.UUID], action: str) -> None:
    """Positions 0..n-1 in `order`; only rows that move are written, and logged."""
    old = {r["id"]: r["position"] for r in rows}
    moved = [(job_id, n) for n, job_id in enumerate(order) if old[job_id] != n]
    await conn.executemany("UPDATE print_jobs SET position = $2, updated_at = now()"
                           " WHERE id = $1", moved)
    if moved:
        await _logged(conn, tenant_id, action, [m[0] for m in moved],
                      {str(i): old[i] for i, _ in moved}, {str(i): n for i, n in moved})


async def _move(request: Request, index: int, action: str) -> Row:
    tenant_id, job_id = tenant_of(request), _job_id(request)
    async with deps(request).pool.acquire() as conn, conn.transaction():
        rows = await _queued(conn, tenant_id)
        order = [r["id"] for r in rows]
        if job_id not in order:
            job = await _locked(conn, tenant_id, job_id)
            raise Problem(409, f"print job {job_id} is {job['status']}; only queued jobs move")
        order.remove(job_id)
        order.insert(index, job_id)
        await _renumber(conn, tenant_id, rows, order, action)
    return await _answer(request, job_id)


@api.route("POST", "/print-jobs/{job_id}/move-to-front", "Put a queued job first (priority "
           "still ranks above position)", response=PrintJobOut, tags=(TAG,))
async def move_to_front(request: Request) -> Row:
    return await _move(request, 0, "move-to-front")


@api.route("POST", "/print-jobs/{job_id}/reorder", "Move a queued job to a 0-based place in the "
           "queue", body=Reorder, response=PrintJobOut, tags=(TAG,))
async def reorder(request: Request, body: Reorder) -> Row:
    return await _move(request, body.position, "reorder")


@api.route("POST", "/print-jobs/reorder", "Put these queued jobs first, in this order",
           body=BulkReorder, response=list[PrintJobOut], tags=(TAG,))
async def bulk_reorder(request: Request, body: BulkReorder) -> list[Row]:
    tenant_id, ids = tenant_of(request), list(dict.fromkeys(body.print_job_ids))
    async with deps(request).pool.acquire() as conn, conn.transaction():
        rows = await _queued(conn, tenant_id)
        queued = {r["id"] for r in rows}
        stray = [str(i) for i in ids if i not in queued]
        if stray:
            raise Problem(409, f"only queued jobs of this tenant move; not: {', '.join(stray)}")
        await _renumber(conn, tenant_id, rows,
                        ids + [r["id"] for r in rows if r["id"] not in set(ids)], "bulk-reorder")
        return [await fetch_one(conn, PRINT_JOBS, tenant_id, i, "print job") for i in ids]


@api.route("POST", "/print-jobs/clear-finished", "Hide finished jobs (COMPLETED, FAILED, "
           "CANCELLED) from the queue view; history stays", response=Cleared, tags=(TAG,))
async def clear_finished(request: Request) -> dict[str, int]:
    tenant_id = tenant_of(request)
    async with deps(request).pool.acquire() as conn, conn.transaction():
        ids = [r["id"] for r in await conn.fetch(
            "UPDATE print_jobs SET cleared_at = now() WHERE tenant_id = $1 AND status = ANY($2)"
            " AND cleared_at IS NULL RETURNING id", tenant_id, list(FINISHED))]
        if ids:
            await _logged(conn, tenant_id, "clear-finished", ids, {"cleared": False},
                          {"cleared": True, "count": len(ids)})
    return {"cleared": len(ids)}


@api.route("POST", "/print-jobs/{job_id}/force-status", "Admin: set a job's status regardless "
           "of its transition table (audited)", body=ForceStatus, response=PrintJobOut,
           tags=(TAG,))
async def force_status(request: Request, body: ForceStatus) -> Row:
    tenant_id, job_id = tenant_of(request), _job_id(request)
    by = await _who(request)
    async with deps(request).pool.acquire() as conn, conn.transaction():
        job = await _locked(conn, tenant_id, job_id)
        if job["status"] == body.status:
            raise Problem(409, f"print job {job_id} is already {body.status}")
        keep_printer = body.status in (PrintJobStatus.ASSIGNED, PrintJobStatus.PRINTING)
        await conn.execute(
            "UPDATE print_jobs SET status = $2, status_at = now(), updated_at = now(),"
            " printer_id = CASE WHEN $3 THEN printer_id END, error = $4 WHERE id = $1",
            job_id, body.status.value, keep_printer, f"forced: {body.reason}")
        if not keep_printer and job["printer_id"] is not None:
            await conn.execute("UPDATE printers SET current_job_id = NULL, updated_at = now()"
                               " WHERE id = $1 AND current_job_id = $2", job["printer_id"], job_id)
        await record(conn, EventType.PRINT_JOB_FORCE_STATUS, tenant_id, {
            "print_job_id": str(job_id), "reason": body.reason, "by": by,
            "before": {"status": job["status"], "printer_id": str(job["printer_id"])},
            "after": {"status": body.status.value}}, subject=("print_job", job_id))
        if job["order_id"] is not None:
            await store.recompute(conn, tenant_id, job["order_id"])
    return await _answer(request, job_id)


@api.route("GET", "/print-jobs/{job_id}/matching", "Why each printer does or does not match "
           "this job now", response=Matching, tags=(TAG,))
async def matching(request: Request) -> dict[str, Any]:
    tenant_id, job_id = tenant_of(request), _job_id(request)
    pool = deps(request).pool
    job = await pool.fetchrow("SELECT id, status, required_tags FROM print_jobs"
                              " WHERE tenant_id = $1 AND id = $2", tenant_id, job_id)
    if job is None:
        raise Problem(404, f"print job {job_id} not found")
    printers = [record_to_dict(r) for r in await pool.fetch(
        "SELECT * FROM printers WHERE tenant_id = $1 ORDER BY name, id", tenant_id)]
    tags = list(job["required_tags"])
    return {"print_job_id": job_id, "status": job["status"], "required_tags": tags,
            "printers": [{"name": p["name"], **explain(p, tags).as_dict(), "printer_id": p["id"]}
                         for p in printers]}
