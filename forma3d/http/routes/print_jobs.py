"""Print jobs: read straight from PostgreSQL; a retry is a durable message to the job's order,
which owns the job's lifecycle (and revives a FAILED order)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.orders.states import OrderStatus
from forma3d.domain.printing.states import JobPurpose, PrintJobStatus
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Field, QuerySpec, compile_where, filter_parameters
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes, query_of
from forma3d.http.routing import json_response
from forma3d.messaging.order import RetryJob
from forma3d.store import outbox

TAG = "print-jobs"
RETRYABLE = frozenset({PrintJobStatus.FAILED, PrintJobStatus.CANCELLED})
CLOSED_ORDERS = frozenset({OrderStatus.FULFILLED, OrderStatus.CANCELLED})


class PrintJobOut(BaseModel):
    id: uuid.UUID
    job_key: str
    purpose: JobPurpose
    order_id: uuid.UUID | None
    line_item_id: uuid.UUID | None
    part_id: uuid.UUID | None
    copy_number: int
    file_id: uuid.UUID
    status: PrintJobStatus
    priority: int
    position: int
    required_tags: list[str]
    attempts: int
    max_attempts: int
    farm_queue_item_id: int | None
    farm_job_uid: str | None
    farm_job_id: int | None
    printer_id: uuid.UUID | None
    error: str | None
    status_at: datetime | None
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    held: bool
    assigned_at: datetime | None
    cleared_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _required(prefixes: str, value: str = "t.value") -> str:
    """The values of a job's `prefix:value` required tags (matching's vocabulary), trimmed and
    lower-cased, as a subquery of one column; `value` may take a part of a filament tag."""
    return (f"SELECT lower(btrim({value})) FROM unnest(j.required_tags) AS r(tag)"
            " CROSS JOIN LATERAL (SELECT lower(btrim(split_part(r.tag, ':', 1))) AS prefix,"
            " substr(r.tag, strpos(r.tag, ':') + 1) AS value) AS t"
            f" WHERE strpos(r.tag, ':') > 0 AND t.prefix IN ({prefixes})"
            f" AND btrim({value}) <> ''")


_FILAMENT_PART = ("CASE WHEN t.prefix = 'filament' THEN split_part(t.value, '/', {})"
                  " ELSE t.value END")  # {}: 1 the material, 2 the colour of type/colour

# Filter-only fields over a job's required tags (case-insensitive, like matching) and its
# order's name, so the queue filters over every job rather than over one loaded page.
JOB_FILTERS = (
    Field("required_tag", column="SELECT lower(btrim(r.tag)) FROM unnest(j.required_tags)"
          " AS r(tag)", each=True, fold=True, sortable=False,
          description="one of the job's required tags"),
    Field("model", column=_required("'model'"), each=True, fold=True, sortable=False,
          description="the printer model the job requires (a model: tag)"),
    Field("material", column=_required("'material', 'filament'", _FILAMENT_PART.format(1)),
          each=True, fold=True, sortable=False,
          description="a material the job requires (a material: or filament: tag)"),
    Field("color", column=_required("'color', 'filament'", _FILAMENT_PART.format(2)),
          each=True, fold=True, sortable=False,
          description="a colour the job requires (a color: or filament: tag)"),
    Field("order_name", column="SELECT lower(o.name) FROM orders o"
          " WHERE o.id = j.order_id AND o.tenant_id = j.tenant_id", each=True, fold=True,
          sortable=False, permission="orders.read", description="the name of the job's order"),
)
PRINT_JOBS = QuerySpec.of(PrintJobOut, "print_jobs j", default_sort="created_at:desc",
                          filters=JOB_FILTERS)
MAX_TAGS = 1000


@api.route("GET", "/print-jobs/required-tags", "The distinct required tags of the jobs the "
           "filter matches (the list's filter parameters), sorted; at most 1000",
           response=list[str], tags=(TAG,), query=tuple(filter_parameters(PRINT_JOBS)),
           permission="print_jobs.read")
async def required_tags(request: Request) -> list[str]:
    query = query_of(request, PRINT_JOBS)
    params: list[object] = []
    where = compile_where(PRINT_JOBS, query.filter, tenant_of(request), params)
    async with deps(request).pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT DISTINCT btrim(r.tag) AS tag FROM {PRINT_JOBS.table}"
            f" CROSS JOIN LATERAL unnest(j.required_tags) AS r(tag) WHERE {where}"
            f" ORDER BY 1 LIMIT {MAX_TAGS}", *params)
    return [row["tag"] for row in rows]


list_routes("/print-jobs", PRINT_JOBS, permission="print_jobs.read",
            name="print_jobs", item=PrintJobOut, tag=TAG)


@api.route("GET", "/print-jobs/{job_id}", "Get a print job", response=PrintJobOut, tags=(TAG,),
           permission="print_jobs.read")
async def get_print_job(request: Request) -> Row:
    job_id = parse_id(request.path_params["job_id"], "print job")
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, PRINT_JOBS, tenant_of(request), job_id, "print job")


@api.route("POST", "/print-jobs/{job_id}/retry", "Requeue a FAILED or CANCELLED job of an open "
           "order (revives a FAILED order); applied asynchronously", response=PrintJobOut,
           status=202, tags=(TAG,),
           permission="print_jobs.retry")
async def retry_print_job(request: Request) -> Response:
    tenant_id = tenant_of(request)
    job_id = parse_id(request.path_params["job_id"], "print job")
    async with deps(request).pool.acquire() as conn:
        job = await conn.fetchrow(
            """SELECT j.status, j.order_id, o.status AS order_status
               FROM print_jobs j LEFT JOIN orders o ON o.id = j.order_id
               WHERE j.tenant_id = $1 AND j.id = $2""", tenant_id, job_id)
        if job is None:
            raise Problem(404, f"print job {job_id} not found")
        _check_retryable(job_id, job["status"], job["order_id"], job["order_status"])
        async with conn.transaction():
            await outbox.send(conn, RetryJob(
                tenant_id=tenant_id, order_id=job["order_id"], print_job_id=job_id))
        row = await fetch_one(conn, PRINT_JOBS, tenant_id, job_id, "print job")
    return json_response(PrintJobOut.model_validate(row).model_dump(mode="json"), 202)


def _check_retryable(job_id: uuid.UUID, status: str, order_id: Any, order_status: Any) -> None:
    if status not in RETRYABLE:
        raise Problem(409, f"print job {job_id} is {status}; only FAILED or CANCELLED jobs "
                      "can be retried")
    if order_id is None:
        raise Problem(409, f"print job {job_id} belongs to no order; stock jobs are retried "
                      "through their batch")
    if order_status in CLOSED_ORDERS:
        raise Problem(409, f"print job {job_id} belongs to a {order_status} order")
