"""The event log: every event the tenant's entities recorded, and one order's own timeline."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Condition, Filter, Group, QuerySpec
from forma3d.http.routes.listing import list_routes

TAG = "events"


class EventOut(BaseModel):
    id: int
    event_id: uuid.UUID
    type: str
    version: int
    subject_type: str | None
    subject_id: str | None
    correlation_id: str | None
    source: str
    occurred_at: datetime
    data: dict[str, Any]


EVENTS = QuerySpec.of(EventOut, "event_log e", default_sort="occurred_at:desc")
# An order's timeline reads oldest first.
ORDER_EVENTS = replace(EVENTS, default_sort="occurred_at:asc")


async def of_order(request: Request) -> Filter:
    """The order's own events; 404 when the order is not this tenant's."""
    order_id = parse_id(request.path_params["order_id"], "order")
    found = await deps(request).pool.fetchval(
        "SELECT true FROM orders WHERE tenant_id = $1 AND id = $2", tenant_of(request), order_id)
    if not found:
        raise Problem(404, f"order {order_id} not found")
    return Group("AND", (Condition("subject_type", "eq", "order"),
                         Condition("subject_id", "eq", str(order_id))))


list_routes("/events", EVENTS, permission="events.read",
            name="events", item=EventOut, tag=TAG)
list_routes("/orders/{order_id}/events", ORDER_EVENTS, permission="events.read",
            name="order_events", item=EventOut,
            tag=TAG, narrow=of_order)
