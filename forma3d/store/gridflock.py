"""GridFlock jobs in PostgreSQL: one row per tenant and canonical SKU, and one function per
status change.

Each change checks GRIDFLOCK_JOB_MACHINE, updates the row only if it still has the status its
writer saw (a second runner, e.g. a host that lost the key in a rebalance, stops at its first
stale write with `JobMoved` instead of fighting), and records the events, all in the caller's
transaction. Settling (COMPLETED, FAILED) and retrying tell the tenant `MappingChanged` for the
SKU, so its waiting orders expand again and read the job's outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from forma3d.db.pool import Connection, Pool
from forma3d.domain.events import EventType
from forma3d.domain.gridflock.sku import GridRequest
from forma3d.domain.gridflock.states import (
    GRIDFLOCK_JOB_MACHINE,
    GridflockJobStatus,
    GridflockStep,
    next_step,
)
from forma3d.messaging.gridflock import RunPipeline
from forma3d.messaging.tenant import MappingChanged
from forma3d.store.events import record
from forma3d.store.outbox import send

S = GridflockJobStatus
ERROR_LIMIT = 2000


@dataclass(frozen=True)
class GridflockJob:
    """A `gridflock_jobs` row."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    sku: str
    printer_profile: str
    status: GridflockJobStatus
    failed_step: GridflockStep | None
    error: str | None
    attempts: int
    plan: dict[str, Any]
    plates: list[dict[str, Any]]
    stl_runs: int
    slice_runs: int
    mapping_id: uuid.UUID | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> GridflockJob:
        return cls(row["id"], row["tenant_id"], row["sku"], row["printer_profile"],
                   S(row["status"]),
                   GridflockStep(row["failed_step"]) if row["failed_step"] else None,
                   row["error"], row["attempts"], row["plan"], list(row["plates"]),
                   row["stl_runs"], row["slice_runs"], row["mapping_id"])


class JobMoved(RuntimeError):
    """A conditional write found the job no longer in the status its writer saw."""


async def find_job(db: Pool | Connection, tenant_id: uuid.UUID, sku: str) -> GridflockJob | None:
    row = await db.fetchrow("SELECT * FROM gridflock_jobs WHERE tenant_id = $1 AND sku = $2",
                            tenant_id, sku)
    return None if row is None else GridflockJob.of(row)


async def request_job(conn: Connection, tenant_id: uuid.UUID,
                      request: GridRequest) -> GridflockJob:
    """The size's job, created PENDING with its `RunPipeline` if this is the first order for it:
    the row is unique per tenant and SKU, so concurrent orders for one new size start exactly one
    pipeline, and the message exists exactly when the job does."""
    row = await conn.fetchrow(
        """INSERT INTO gridflock_jobs (id, tenant_id, sku, printer_profile, plan)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, sku) DO NOTHING RETURNING *""",
        uuid.uuid4(), tenant_id, request.sku, request.profile.id, request.plan().as_dict())
    if row is None:
        found = await find_job(conn, tenant_id, request.sku)
        assert found is not None
        return found
    job = GridflockJob.of(row)
    await _status_event(conn, job, None)
    await send(conn, RunPipeline(tenant_id=tenant_id, sku=job.sku, job_id=job.id))
    return job


async def advance(conn: Connection, job: GridflockJob, *,
                  plates: Sequence[Mapping[str, Any]] | None = None, stl_runs: int = 0,
                  slice_runs: int = 0) -> GridflockJob:
    """The next running step (PENDING -> GENERATING_STL -> ... -> MAPPING), keeping what the
    step before made: the plates' files and the tool runs it counted."""
    target = next_step(job.status)
    if target == S.COMPLETED:
        raise ValueError("gridflock job: MAPPING completes through complete()")
    return await _move(conn, job, target, plates=plates, stl_runs=stl_runs,
                       slice_runs=slice_runs)


async def complete(conn: Connection, job: GridflockJob, mapping_id: uuid.UUID, *,
                   existing_mapping: bool) -> GridflockJob:
    """COMPLETED with the SKU's mapping (MAPPING, or PENDING when one already existed)."""
    done = await _move(conn, job, S.COMPLETED, mapping_id=mapping_id)
    await record(conn, EventType.GRIDFLOCK_MAPPING_READY, job.tenant_id, {
        "sku": job.sku, "product_mapping_id": str(mapping_id), "gridflock_job_id": str(job.id),
        "existing_mapping": existing_mapping}, subject=("gridflock_job", job.id))
    await _announce(conn, job)
    return done


async def fail(conn: Connection, job: GridflockJob, step: GridflockStep,
               reason: str) -> GridflockJob:
    """FAILED at `step` with the reason, from the status its runner saw."""
    error = reason[:ERROR_LIMIT]
    failed = await _move(conn, job, S.FAILED, failed_step=step, error=error)
    await record(conn, EventType.GRIDFLOCK_PIPELINE_FAILED, job.tenant_id, {
        "sku": job.sku, "gridflock_job_id": str(job.id), "failed_step": step.value,
        "error_message": error}, subject=("gridflock_job", job.id))
    await _announce(conn, job)
    return failed


async def retry(conn: Connection, job: GridflockJob) -> GridflockJob:
    """FAILED -> PENDING (one more attempt, the failure cleared): held orders go back to
    waiting, and the pipeline runs again."""
    retried = await _move(conn, job, S.PENDING, retried=True)
    await send(conn, RunPipeline(tenant_id=job.tenant_id, sku=job.sku, job_id=job.id))
    await _announce(conn, job)
    return retried


async def _move(conn: Connection, job: GridflockJob, target: GridflockJobStatus, *,
                plates: Sequence[Mapping[str, Any]] | None = None, stl_runs: int = 0,
                slice_runs: int = 0, mapping_id: uuid.UUID | None = None,
                failed_step: GridflockStep | None = None, error: str | None = None,
                retried: bool = False) -> GridflockJob:
    GRIDFLOCK_JOB_MACHINE.check(job.status, target)
    row = await conn.fetchrow(
        """UPDATE gridflock_jobs SET status = $3, plates = coalesce($4, plates),
                  stl_runs = stl_runs + $5, slice_runs = slice_runs + $6,
                  mapping_id = coalesce($7, mapping_id), failed_step = $8, error = $9,
                  attempts = attempts + CASE WHEN $10 THEN 1 ELSE 0 END,
                  started_at = CASE WHEN $3 = 'GENERATING_STL' AND $2 = 'PENDING' THEN now()
                                    ELSE started_at END,
                  completed_at = CASE WHEN $3 = 'COMPLETED' THEN now() ELSE completed_at END,
                  updated_at = now()
           WHERE id = $1 AND status = $2 RETURNING *""",
        job.id, job.status.value, target.value, None if plates is None else list(plates),
        stl_runs, slice_runs, mapping_id, failed_step and failed_step.value, error, retried)
    if row is None:
        raise JobMoved(f"gridflock job {job.sku} is no longer {job.status.value}")
    moved = GridflockJob.of(row)
    await _status_event(conn, moved, job.status)
    return moved


async def _status_event(conn: Connection, job: GridflockJob,
                        previous: GridflockJobStatus | None) -> None:
    await record(conn, EventType.GRIDFLOCK_JOB_STATUS_CHANGED, job.tenant_id, {
        "sku": job.sku, "gridflock_job_id": str(job.id),
        "previous_status": None if previous is None else previous.value,
        "status": job.status.value,
        "failed_step": None if job.failed_step is None else job.failed_step.value},
        subject=("gridflock_job", job.id))


async def _announce(conn: Connection, job: GridflockJob) -> None:
    """Orders waiting on this SKU expand again and read the job's outcome."""
    await send(conn, MappingChanged(tenant_id=job.tenant_id, sku=job.sku, variant_id=""))
