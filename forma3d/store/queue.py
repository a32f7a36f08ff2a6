"""The print queue's order, owned by the tenant entity: which waiting job is held, each job's
position, which finished jobs are cleared from view, and the admin override of a stock job's
status. Every change is logged as `print-job.queue-changed` (or `print-job.force-status`) with
before and after, in the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.store.events import record

WAITING = ("PENDING", "QUEUED")
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")


@dataclass(frozen=True)
class QueuedJob:
    id: uuid.UUID
    position: int


async def locked_job(conn: Connection, tenant_id: uuid.UUID,
                     job_id: uuid.UUID) -> dict[str, Any] | None:
    """The job's row, locked until the transaction ends; None if the tenant has no such job."""
    row = await conn.fetchrow("SELECT * FROM print_jobs WHERE tenant_id = $1 AND id = $2"
                              " FOR UPDATE", tenant_id, job_id)
    return record_to_dict(row) if row else None


async def waiting(conn: Connection, tenant_id: uuid.UUID) -> list[QueuedJob]:
    """The tenant's waiting jobs in queue order, locked (one reorder at a time per tenant, even
    against a caller outside the tenant's entity)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", str(tenant_id))
    rows = await conn.fetch(
        "SELECT id, position FROM print_jobs WHERE tenant_id = $1 AND status = ANY($2)"
        " ORDER BY position, created_at, id FOR UPDATE", tenant_id, list(WAITING))
    return [QueuedJob(r["id"], r["position"]) for r in rows]


async def log_change(conn: Connection, tenant_id: uuid.UUID, action: str,
                     ids: Sequence[uuid.UUID], before: dict[str, Any],
                     after: dict[str, Any]) -> None:
    await record(conn, EventType.PRINT_JOB_QUEUE_CHANGED, tenant_id, {
        "action": action, "print_job_ids": [str(i) for i in ids], "before": before,
        "after": after}, subject=("print_job", ids[0]) if len(ids) == 1 else None)


async def set_held(conn: Connection, job_id: uuid.UUID, held: bool) -> None:
    await conn.execute("UPDATE print_jobs SET held = $2, updated_at = now() WHERE id = $1",
                       job_id, held)


async def renumber(conn: Connection, tenant_id: uuid.UUID, jobs: Sequence[QueuedJob],
                   order: Sequence[uuid.UUID], action: str) -> None:
    """Positions 0..n-1 in `order`; only jobs that move are written, and logged."""
    old = {job.id: job.position for job in jobs}
    moved = [(job_id, n) for n, job_id in enumerate(order) if old[job_id] != n]
    await conn.executemany("UPDATE print_jobs SET position = $2, updated_at = now()"
                           " WHERE id = $1", moved)
    if moved:
        await log_change(conn, tenant_id, action, [m[0] for m in moved],
                         {str(i): old[i] for i, _ in moved}, {str(i): n for i, n in moved})


async def clear_finished(conn: Connection, tenant_id: uuid.UUID) -> int:
    """Hide finished jobs from the queue view (history stays); how many were hidden."""
    ids = [r["id"] for r in await conn.fetch(
        "UPDATE print_jobs SET cleared_at = now() WHERE tenant_id = $1 AND status = ANY($2)"
        " AND cleared_at IS NULL RETURNING id", tenant_id, list(FINISHED))]
    if ids:
        await log_change(conn, tenant_id, "clear-finished", ids, {"cleared": False},
                         {"cleared": True, "count": len(ids)})
    return len(ids)
