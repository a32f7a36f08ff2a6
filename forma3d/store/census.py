"""Counts across every tenant for the cluster admins' metrics: orders and print jobs by status.

Read-only; the outbox's own figures are `store.outbox.backlog`.
"""

from __future__ import annotations

from forma3d.db.pool import Pool


async def orders_by_status(pool: Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    return {str(r["status"]): int(r["n"]) for r in rows}


async def print_jobs_by_status(pool: Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM print_jobs GROUP BY status")
    return {str(r["status"]): int(r["n"]) for r in rows}
