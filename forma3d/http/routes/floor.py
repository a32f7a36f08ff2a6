"""The farm floor for the dashboard: every printer with its place on the floor and the job on it,
in one read; and a printer's side of matching ("which queued jobs can it take, and why not").

Reads only, straight from PostgreSQL. The place is `domain.printing.floor.floor_place` and the
verdicts are `domain.printing.matching.explain`, the rules dispatch itself uses.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from forma3d.db.pool import record_to_dict
from forma3d.domain.printing.floor import FloorGroup, floor_place
from forma3d.domain.printing.matching import availability, explain
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.routes.api import api
from forma3d.http.routes.printers import PrinterOut

TAG = "printers"
MATCHING_JOBS = 50  # the head of the queue is what an operator acts on


class FloorJob(BaseModel):
    """The job on a printer, as its tile shows it."""

    id: uuid.UUID
    status: PrintJobStatus
    order_id: uuid.UUID | None
    order_name: str | None
    file_name: str
    estimated_seconds: int | None
    started_at: datetime | None
    assigned_at: datetime | None


class FloorPrinter(PrinterOut):
    group: FloorGroup
    why: str
    job: FloorJob | None


class JobVerdict(BaseModel):
    print_job_id: uuid.UUID
    order_id: uuid.UUID | None
    order_name: str | None
    file_name: str
    required_tags: list[str]
    matches: bool
    fits: bool
    reasons: list[str]
    missing_tags: list[str]


class PrinterMatching(BaseModel):
    printer_id: uuid.UUID
    name: str
    available: bool
    reasons: list[str]  # why it takes no job now, whatever the job
    queued: int  # queued jobs not held, of which `jobs` are the first MATCHING_JOBS
    jobs: list[JobVerdict]


FLOOR = """
SELECT p.*, j.id AS job_id, j.status AS job_status, j.order_id AS job_order_id,
       o.name AS job_order_name, f.filename AS job_file_name,
       f.estimated_seconds AS job_estimated_seconds, j.started_at AS job_started_at,
       j.assigned_at AS job_assigned_at
FROM printers p
LEFT JOIN print_jobs j ON j.tenant_id = p.tenant_id AND j.id = p.current_job_id
LEFT JOIN orders o ON o.tenant_id = j.tenant_id AND o.id = j.order_id
LEFT JOIN print_files f ON f.tenant_id = j.tenant_id AND f.id = j.file_id
WHERE p.tenant_id = $1
ORDER BY p.name, p.id"""

QUEUED = """
SELECT j.id, j.order_id, o.name AS order_name, f.filename, j.required_tags
FROM print_jobs j
LEFT JOIN orders o ON o.tenant_id = j.tenant_id AND o.id = j.order_id
JOIN print_files f ON f.tenant_id = j.tenant_id AND f.id = j.file_id
WHERE j.tenant_id = $1 AND j.status = 'QUEUED' AND NOT j.held
ORDER BY j.purpose = 'STOCK', j.priority DESC, j.position, j.created_at, j.id
LIMIT $2"""


def _floor_row(row: dict[str, Any]) -> dict[str, Any]:
    job = {k[4:]: row.pop(k) for k in list(row) if k.startswith("job_")}
    place = floor_place(row)
    return {**row, "group": place.group, "why": place.why,
            "job": job if job["id"] is not None else None}


@api.route("GET", "/floor", "Every printer with its place on the floor (needs attention, "
           "printing, idle, disabled, offline) and the job on it", response=list[FloorPrinter],
           tags=(TAG,), permission="printers.read")
async def floor(request: Request) -> list[dict[str, Any]]:
    rows = await deps(request).pool.fetch(FLOOR, tenant_of(request))
    return [_floor_row(record_to_dict(r)) for r in rows]


@api.route("GET", "/printers/{printer_id}/matching", "Which queued jobs this printer can take "
           "now, and why not", response=PrinterMatching, tags=(TAG,),
           permission="printers.read")
async def printer_matching(request: Request) -> dict[str, Any]:
    tenant_id = tenant_of(request)
    printer_id = parse_id(request.path_params["printer_id"], "printer")
    pool = deps(request).pool
    row = await pool.fetchrow("SELECT * FROM printers WHERE tenant_id = $1 AND id = $2",
                              tenant_id, printer_id)
    if row is None:
        raise Problem(404, f"printer {printer_id} not found")
    printer = record_to_dict(row)
    jobs = await pool.fetch(QUEUED, tenant_id, MATCHING_JOBS)
    queued = await pool.fetchval(
        "SELECT count(*) FROM print_jobs WHERE tenant_id = $1 AND status = 'QUEUED'"
        " AND NOT held", tenant_id)
    reasons = [r.value for r in availability(printer)]
    verdicts = []
    for job in jobs:
        tags = list(job["required_tags"])
        verdict = explain(printer, tags).as_dict()
        verdicts.append({"print_job_id": job["id"], "order_id": job["order_id"],
                         "order_name": job["order_name"], "file_name": job["filename"],
                         "required_tags": tags, "matches": verdict["matches"],
                         "fits": verdict["fits"], "reasons": verdict["reasons"],
                         "missing_tags": verdict["missing_tags"]})
    return {"printer_id": printer_id, "name": printer["name"], "available": not reasons,
            "reasons": reasons, "queued": queued, "jobs": verdicts}
