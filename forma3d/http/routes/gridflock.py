"""GridFlock: the live preview (pure planning answered on every keystroke, bounded by the tenant's
size limits and the platform's ceiling before any work starts), the jobs
(read from PostgreSQL; a retry is a durable message to the job's entity) and plate downloads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.gridflock.errors import GridflockError
from forma3d.domain.gridflock.planner import ConnectorStyle, PlanOptions, plan_plates
from forma3d.domain.gridflock.profiles import DEFAULT_PROFILE_ID, get_profile
from forma3d.domain.gridflock.sku import SizeLimits, canonical_sku, check_size
from forma3d.domain.gridflock.states import GridflockJobStatus, GridflockStep
from forma3d.domain.tenants import GRIDFLOCK_CEILING_MM
from forma3d.gridflock.preview import preview_payload
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Field as QField
from forma3d.http.query import FieldType, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes
from forma3d.http.routing import json_response
from forma3d.messaging.gridflock import RetryPipeline
from forma3d.store.outbox import send
from forma3d.store.tenants import tenant_settings

TAG = "gridflock"


class PreviewOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    magnets: bool = False
    connector: ConnectorStyle = ConnectorStyle.PUZZLE


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width_mm: float = Field(gt=0, le=GRIDFLOCK_CEILING_MM, description="drawer width (X) in mm;"
                            " also within the tenant's GridFlock size limits")
    depth_mm: float = Field(gt=0, le=GRIDFLOCK_CEILING_MM, description="drawer depth (Y) in mm;"
                            " also within the tenant's GridFlock size limits")
    options: PreviewOptions = Field(default_factory=PreviewOptions)
    printer_profile: str = Field(DEFAULT_PROFILE_ID, description="profile id or SKU code")


class PreviewOut(BaseModel):
    sku: str
    plan: dict[str, Any]
    svg: str


class GridflockJobOut(BaseModel):
    id: uuid.UUID
    sku: str
    printer_profile: str
    status: GridflockJobStatus
    failed_step: GridflockStep | None
    error: str | None
    attempts: int
    stl_runs: int
    slice_runs: int
    mapping_id: uuid.UUID | None
    plan: dict[str, Any]
    plates: list[dict[str, Any]]
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime


JOBS = QuerySpec(
    table="gridflock_jobs g",
    tenant_column="g.tenant_id",
    default_sort="created_at:desc",
    fields=(
        QField("id", FieldType.UUID, "g.id"),
        QField("sku", column="g.sku"),
        QField("printer_profile", column="g.printer_profile"),
        QField("status", FieldType.ENUM, "g.status", choices=tuple(GridflockJobStatus)),
        QField("failed_step", FieldType.ENUM, "g.failed_step", choices=tuple(GridflockStep)),
        QField("error", column="g.error"),
        QField("attempts", FieldType.INT, "g.attempts"),
        QField("stl_runs", FieldType.INT, "g.stl_runs"),
        QField("slice_runs", FieldType.INT, "g.slice_runs"),
        QField("mapping_id", FieldType.UUID, "g.mapping_id"),
        QField("plan", column="g.plan", filterable=False, sortable=False),
        QField("plates", column="g.plates", filterable=False, sortable=False),
        QField("started_at", FieldType.DATETIME, "g.started_at"),
        QField("completed_at", FieldType.DATETIME, "g.completed_at"),
        QField("created_at", FieldType.DATETIME, "g.created_at"),
        QField("updated_at", FieldType.DATETIME, "g.updated_at"),
    ),
)


@api.route("POST", "/gridflock/preview", "Plan a drawer: the plates as JSON and an SVG drawing "
           "(cheap enough for every keystroke); sizes outside the tenant's GridFlock limits "
           "get 422 naming the limit", body=PreviewIn, response=PreviewOut, tags=(TAG,),
           permission="gridflock.preview", audit=False)
async def preview(request: Request, body: PreviewIn) -> dict[str, Any]:
    settings = await tenant_settings(deps(request).pool, tenant_of(request))
    limits = SizeLimits(settings.gridflock_min_mm, settings.gridflock_max_mm)
    try:
        check_size("width_mm", body.width_mm, limits)
        check_size("depth_mm", body.depth_mm, limits)
        profile = get_profile(body.printer_profile)
        options = PlanOptions(magnets=body.options.magnets, connector=body.options.connector)
        plate_set = plan_plates(body.width_mm, body.depth_mm, profile, options)
    except GridflockError as error:
        field = getattr(error, "field", "body")
        raise Problem(422, str(error), errors=[{"field": field, "message": str(error)}]) from None
    return {"sku": canonical_sku(body.width_mm, body.depth_mm, options, profile),
            **preview_payload(plate_set)}


list_routes("/gridflock/jobs", JOBS, permission="gridflock.read",
            name="gridflock_jobs", item=GridflockJobOut, tag=TAG)


async def _job(request: Request) -> Row:
    job_id = parse_id(request.path_params["job_id"], "GridFlock job")
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, JOBS, tenant_of(request), job_id, "GridFlock job")


@api.route("GET", "/gridflock/jobs/{job_id}", "Get a GridFlock job with its plan and plates",
           response=GridflockJobOut, tags=(TAG,),
           permission="gridflock.read")
async def get_job(request: Request) -> Row:
    return await _job(request)


@api.route("POST", "/gridflock/jobs/{job_id}/retry", "Run a FAILED job again from the start "
           "(finished plates are cache hits); applied asynchronously", response=GridflockJobOut,
           status=202, tags=(TAG,),
           permission="gridflock.retry")
async def retry_job(request: Request) -> Response:
    tenant_id = tenant_of(request)
    job_id = parse_id(request.path_params["job_id"], "GridFlock job")
    async with deps(request).pool.acquire() as conn:
        async with conn.transaction():
            job = await conn.fetchrow(
                "SELECT sku, status FROM gridflock_jobs WHERE tenant_id = $1 AND id = $2"
                " FOR UPDATE", tenant_id, job_id)
            if job is None:
                raise Problem(404, f"GridFlock job {job_id} not found")
            if job["status"] != GridflockJobStatus.FAILED:
                raise Problem(409, f"GridFlock job {job_id} is {job['status']}; only FAILED "
                              "jobs can be retried")
            await send(conn, RetryPipeline(tenant_id=tenant_id, sku=job["sku"]))
        row = await fetch_one(conn, JOBS, tenant_id, job_id, "GridFlock job")
    return json_response(GridflockJobOut.model_validate(row).model_dump(mode="json"), 202)


@api.route("GET", "/gridflock/jobs/{job_id}/plates/{number}/{kind}", "Download a plate's STL "
           "or gcode (kind: stl or gcode)", tags=(TAG,),
           permission="gridflock.read")
async def download_plate(request: Request) -> Response:
    job = await _job(request)
    kind = request.path_params["kind"]
    if kind not in ("stl", "gcode"):
        raise Problem(404, f"no plate file of kind {kind!r} (stl or gcode)")
    number = request.path_params["number"]
    plate = next((p for p in job["plates"] if str(p.get("number")) == number), None)
    if plate is None:
        raise Problem(404, f"plate {number} of GridFlock job {job['id']} has no files yet")
    content: bytes | None = None
    name = f"{job['sku'].lower()}-plate{number}"
    if kind == "gcode" and plate.get("file_id"):
        row = await deps(request).pool.fetchrow(
            "SELECT filename, content FROM print_files WHERE tenant_id = $1 AND id = $2",
            tenant_of(request), uuid.UUID(plate["file_id"]))
        if row is not None:
            content, name = bytes(row["content"]), row["filename"]
    if content is None:
        path = plate.get(f"{kind}_path")
        content = await asyncio.to_thread(_read, path)
        if content is None:
            raise Problem(404, f"plate {number}'s {kind} is not in the cache; retry the job "
                          "to make it again" if kind == "stl" else f"plate {number} has no gcode")
        name = Path(str(path)).name if kind == "gcode" else f"{name}.stl"
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    media = "model/stl" if kind == "stl" else "application/octet-stream"
    return Response(content, media_type=media, headers={"Content-Disposition": disposition})


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
