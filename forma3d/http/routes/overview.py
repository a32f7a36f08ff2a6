"""The tenant at a glance for the dashboard's overview: one cheap read of counts (the figures are
`forma3d.store.overview`), so the overview needs no list endpoint walked page by page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from forma3d.domain.orders.states import OrderStatus
from forma3d.http.deps import deps, tenant_of
from forma3d.http.routes.api import api
from forma3d.store import overview

HOURS = 24


class HourOut(BaseModel):
    hour: datetime
    completed: int


class WaitingOrder(BaseModel):
    id: uuid.UUID
    name: str
    status: OrderStatus
    received_at: datetime


class Overview(BaseModel):
    at: datetime
    orders_by_status: dict[str, int]
    jobs_completed_per_hour: list[HourOut]  # the last HOURS hours, oldest first
    printers_by_place: dict[str, int]  # attention, printing, idle, disabled, offline
    waiting_orders: int  # neither fulfilled nor cancelled
    oldest_waiting_order: WaitingOrder | None


@api.route("GET", "/overview", "The tenant at a glance: orders by status, jobs completed per "
           "hour (last 24 h), printers by place on the floor, the oldest waiting order",
           response=Overview, tags=("overview",), permission="orders.read")
async def get_overview(request: Request) -> dict[str, Any]:
    tenant_id, pool = tenant_of(request), deps(request).pool
    now = datetime.now(UTC)
    waiting, oldest = await overview.waiting_orders(pool, tenant_id)
    hours = await overview.jobs_completed_per_hour(
        pool, tenant_id, overview.first_of_last_hours(now, HOURS), HOURS)
    return {"at": now,
            "orders_by_status": await overview.orders_by_status(pool, tenant_id),
            "jobs_completed_per_hour": [{"hour": h.hour, "completed": h.completed}
                                        for h in hours],
            "printers_by_place": await overview.printers_by_place(pool, tenant_id),
            "waiting_orders": waiting, "oldest_waiting_order": oldest}
