"""Smart-queue operations on print jobs: cancel, pause, resume, move to front, reorder, bulk
reorder, clear finished, admin force-status, and the per-printer matching explanation.

Each is a command to the job's owner: the queue's order (held, position, cleared) and stock jobs
belong to the tenant's entity, an order's jobs to the order's entity. What touches a printer
(stopping, pausing or resuming a print) is asked of the printer's entity after the owner's
change is committed, so the farm's echo of it changes nothing more.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from forma3d.db.pool import record_to_dict
from forma3d.domain.printing.matching import explain
from forma3d.domain.printing.states import PRINT_JOB_MACHINE, PrintJobStatus
from forma3d.http.deps import ask, deps, parse_id, tenant_of, who
from forma3d.http.problems import Problem
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one
from forma3d.http.routes.print_jobs import PRINT_JOBS, TAG, PrintJobOut
from forma3d.messaging.catalog import (
    CancelStockJob,
    ClearFinished,
    ForceStockJobStatus,
    HoldJob,
    MoveJob,
    MoveJobToFront,
    ReorderJobs,
)
from forma3d.messaging.order import CancelJob, ForceJobStatus
from forma3d.messaging.printer import ControlPrinter
from forma3d.messaging.text import Text

OPERATOR_CANCEL = "cancelled by an operator"


class Reorder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=0, le=1_000_000, description="0-based place in the queue")


class BulkReorder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    print_job_ids: list[uuid.UUID] = Field(min_length=1, max_length=10_000)


class ForceStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: PrintJobStatus
    reason: Text = Field(min_length=3, max_length=500)


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


async def _job(request: Request) -> dict[str, Any]:
    """The job's owner and state as they are now (404 if the tenant has no such job)."""
    job_id = parse_id(request.path_params["job_id"], "print job")
    row = await deps(request).pool.fetchrow(
        "SELECT id, tenant_id, order_id, status, printer_id FROM print_jobs"
        " WHERE tenant_id = $1 AND id = $2", tenant_of(request), job_id)
    if row is None:
        raise Problem(404, f"print job {job_id} not found")
    return record_to_dict(row)


async def _printer(request: Request, printer_id: uuid.UUID | None,
                   action: Literal["pause", "resume", "cancel"], comment: str) -> None:
    """Ask the job's printer entity to act on the farm (after the job's change committed)."""
    if printer_id is not None:
        await ask(request, ControlPrinter(tenant_id=tenant_of(request), printer_id=printer_id,
                                          action=action, comment=comment))


async def _answer(request: Request, job_id: uuid.UUID) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, PRINT_JOBS, tenant_of(request), job_id, "print job")


def _job_id(request: Request) -> uuid.UUID:
    return parse_id(request.path_params["job_id"], "print job")


@api.route("POST", "/print-jobs/{job_id}/cancel", "Cancel a job for good (stops its printer if "
           "it is printing)", response=PrintJobOut, tags=(TAG,),
           permission="print_jobs.cancel")
async def cancel_job(request: Request) -> Row:
    job = await _job(request)
    tenant_id, job_id = job["tenant_id"], job["id"]
    if job["order_id"] is None:
        printer = await ask(request, CancelStockJob(tenant_id=tenant_id, print_job_id=job_id,
                                                    reason=OPERATOR_CANCEL))
        await _printer(request, printer, "cancel", OPERATOR_CANCEL)
    else:
        status = PrintJobStatus(job["status"])
        if not PRINT_JOB_MACHINE.can(status, PrintJobStatus.CANCELLED):
            raise Problem(409, f"print job {job_id} is {status}; it cannot be cancelled")
        await ask(request, CancelJob(tenant_id=tenant_id, order_id=job["order_id"],
                                     print_job_id=job_id, reason=OPERATOR_CANCEL))
    return await _answer(request, job_id)


async def _hold(request: Request, held: bool) -> Row:
    tenant_id, job_id = tenant_of(request), _job_id(request)
    action: Literal["pause", "resume"] = "pause" if held else "resume"
    printer = await ask(request, HoldJob(tenant_id=tenant_id, print_job_id=job_id, held=held))
    await _printer(request, printer, action, f"{action}d by an operator")
    return await _answer(request, job_id)


@api.route("POST", "/print-jobs/{job_id}/pause", "Pause a job: held in the queue, or the print "
           "paused on its printer", response=PrintJobOut, tags=(TAG,),
           permission="print_jobs.pause")
async def pause_job(request: Request) -> Row:
    return await _hold(request, True)


@api.route("POST", "/print-jobs/{job_id}/resume", "Resume a paused job (queue or printer)",
           response=PrintJobOut, tags=(TAG,),
           permission="print_jobs.pause")
async def resume_job(request: Request) -> Row:
    return await _hold(request, False)


@api.route("POST", "/print-jobs/{job_id}/move-to-front", "Put a queued job first (priority "
           "still ranks above position)", response=PrintJobOut, tags=(TAG,),
           permission="print_jobs.reorder")
async def move_to_front(request: Request) -> Row:
    job_id = _job_id(request)
    await ask(request, MoveJobToFront(tenant_id=tenant_of(request), print_job_id=job_id))
    return await _answer(request, job_id)


@api.route("POST", "/print-jobs/{job_id}/reorder", "Move a queued job to a 0-based place in the "
           "queue", body=Reorder, response=PrintJobOut, tags=(TAG,),
           permission="print_jobs.reorder")
async def reorder(request: Request, body: Reorder) -> Row:
    job_id = _job_id(request)
    await ask(request, MoveJob(tenant_id=tenant_of(request), print_job_id=job_id,
                               position=body.position))
    return await _answer(request, job_id)


@api.route("POST", "/print-jobs/reorder", "Put these queued jobs first, in this order",
           body=BulkReorder, response=list[PrintJobOut], tags=(TAG,),
           permission="print_jobs.reorder")
async def bulk_reorder(request: Request, body: BulkReorder) -> list[Row]:
    tenant_id, ids = tenant_of(request), list(dict.fromkeys(body.print_job_ids))
    await ask(request, ReorderJobs(tenant_id=tenant_id, print_job_ids=ids))
    async with deps(request).pool.acquire() as conn:
        return [await fetch_one(conn, PRINT_JOBS, tenant_id, i, "print job") for i in ids]


@api.route("POST", "/print-jobs/clear-finished", "Hide finished jobs (COMPLETED, FAILED, "
           "CANCELLED) from the queue view; history stays", response=Cleared, tags=(TAG,),
           permission="print_jobs.clear")
async def clear_finished(request: Request) -> dict[str, int]:
    return {"cleared": await ask(request, ClearFinished(tenant_id=tenant_of(request)))}


@api.route("POST", "/print-jobs/{job_id}/force-status", "Admin: set a job's status regardless "
           "of its transition table (audited)", body=ForceStatus, response=PrintJobOut,
           tags=(TAG,),
           permission="print_jobs.force_status")
async def force_status(request: Request, body: ForceStatus) -> Row:
    job = await _job(request)
    tenant_id, job_id = job["tenant_id"], job["id"]
    if job["status"] == body.status:
        raise Problem(409, f"print job {job_id} is already {body.status}")
    by = await who(request)
    if job["order_id"] is None:
        await ask(request, ForceStockJobStatus(tenant_id=tenant_id, print_job_id=job_id,
                                               status=body.status, reason=body.reason, by=by))
    else:
        await ask(request, ForceJobStatus(tenant_id=tenant_id, order_id=job["order_id"],
                                          print_job_id=job_id, status=body.status,
                                          reason=body.reason, by=by))
    return await _answer(request, job_id)


@api.route("GET", "/print-jobs/{job_id}/matching", "Why each printer does or does not match "
           "this job now", response=Matching, tags=(TAG,),
           permission="print_jobs.read")
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
