"""A tenant's figures at a glance, for the dashboard's overview: orders by status, print jobs
completed per hour, printers by their place on the floor and the oldest waiting order.

Read-only: counted in PostgreSQL (the printers' places by `domain.printing.floor`, the rule the
floor view groups by).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from forma3d.db.pool import Pool, record_to_dict
from forma3d.domain.orders.states import OrderStatus
from forma3d.domain.printing.floor import FloorGroup, floor_place

DONE = (OrderStatus.FULFILLED.value, OrderStatus.CANCELLED.value)  # not waiting for anything


@dataclass(frozen=True)
class HourCount:
    hour: datetime  # the hour's start
    completed: int


async def orders_by_status(pool: Pool, tenant_id: uuid.UUID) -> dict[str, int]:
    """Every order status, zero where the tenant has none."""
    rows = await pool.fetch(
        "SELECT status, count(*) AS n FROM orders WHERE tenant_id = $1 GROUP BY status", tenant_id)
    counts = {str(r["status"]): int(r["n"]) for r in rows}
    return {s.value: counts.pop(s.value, 0) for s in OrderStatus} | counts


async def jobs_completed_per_hour(pool: Pool, tenant_id: uuid.UUID, first_hour: datetime,
                                  hours: int = 24) -> list[HourCount]:
    """Print jobs (order and stock) that completed in each hour from `first_hour` on."""
    rows = await pool.fetch(
        """SELECT h.hour, count(j.id) AS n
           FROM generate_series($2::timestamptz, $2::timestamptz + ($3 - 1) * interval '1 hour',
                                interval '1 hour') AS h(hour)
           LEFT JOIN print_jobs j
             ON j.tenant_id = $1 AND j.status = 'COMPLETED'
            AND j.completed_at >= h.hour AND j.completed_at < h.hour + interval '1 hour'
           GROUP BY h.hour ORDER BY h.hour""", tenant_id, first_hour, hours)
    return [HourCount(r["hour"], int(r["n"])) for r in rows]


async def printers_by_place(pool: Pool, tenant_id: uuid.UUID) -> dict[str, int]:
    """Printers per floor group, every group present (zero where none)."""
    rows = await pool.fetch(
        "SELECT state, online, enabled, ready, current_job_id FROM printers WHERE tenant_id = $1",
        tenant_id)
    places = Counter(floor_place(record_to_dict(r)).group for r in rows)
    return {g.value: places[g] for g in FloorGroup}


async def waiting_orders(pool: Pool, tenant_id: uuid.UUID) -> tuple[int, dict[str, Any] | None]:
    """How many orders are neither fulfilled nor cancelled, and the one received first."""
    count = await pool.fetchval(
        "SELECT count(*) FROM orders WHERE tenant_id = $1 AND status <> ALL($2::text[])",
        tenant_id, list(DONE))
    row = await pool.fetchrow(
        """SELECT id, name, status, received_at FROM orders
           WHERE tenant_id = $1 AND status <> ALL($2::text[])
           ORDER BY received_at, id LIMIT 1""", tenant_id, list(DONE))
    return int(count), record_to_dict(row) if row else None


def first_of_last_hours(now: datetime, hours: int = 24) -> datetime:
    """The start of the first of the last `hours` whole-or-current hours ending at `now`."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
