"""Orders: read from PostgreSQL with their line items, print jobs and shipment; cancelling is a
durable message to the order entity, which stops jobs and the parcel in the right order; holding
and releasing are commands asked of the order entity; an order made by API is a command to the
tenant entity, which stores it the way it stores a Shopify order."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.orders.states import LineItemStatus, OrderStatus
from forma3d.http.deps import ask, deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Conn, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, fetch_related, list_routes
from forma3d.http.routes.print_jobs import CLOSED_ORDERS, PRINT_JOBS, PrintJobOut
from forma3d.http.routes.shipments import SHIPMENTS, ShipmentOut
from forma3d.http.routing import json_response
from forma3d.messaging.order import CancelOrder, HoldOrder, ReleaseOrder
from forma3d.messaging.tenant import CreateOrder, OrderDraft
from forma3d.messaging.text import Text
from forma3d.store import outbox

TAG = "orders"
RELATIONS = ("line_items", "print_jobs", "shipment")


class LineItemOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    shopify_line_item_id: int
    sku: str | None
    variant_id: str | None
    title: str
    quantity: int
    ordered_quantity: int | None
    refunded_quantity: int
    requires_shipping: bool
    properties: dict[str, Any]
    mapping_id: uuid.UUID | None
    status: LineItemStatus
    reason: str | None
    parts_total: int
    parts_completed: int


class OrderOut(BaseModel):
    id: uuid.UUID
    shopify_order_id: int | None
    source: str
    reference: str | None
    name: str
    email: str | None
    status: OrderStatus
    reason: str | None
    financial_status: str | None
    hold_reason: str | None
    currency: str | None
    total_price: Decimal | None
    shipping_address: dict[str, Any] | None
    shopify_created_at: datetime | None
    shopify_updated_at: datetime | None
    parts_total: int
    parts_completed: int
    received_at: datetime
    queued_at: datetime | None
    ready_at: datetime | None
    fulfilled_at: datetime | None
    cancelled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class OrderDetail(OrderOut):
    line_items: list[LineItemOut]
    print_jobs: list[PrintJobOut]
    shipment: ShipmentOut | None


ORDERS = QuerySpec.of(OrderOut, "orders o", default_sort="created_at:desc",
                      includes=frozenset(RELATIONS))
LINE_ITEMS = QuerySpec.of(LineItemOut, "line_items li",
                          default_sort="shopify_line_item_id:asc")
# Embedded jobs read in print order: line item, then part, then copy.
ORDER_JOBS = replace(PRINT_JOBS, default_sort="line_item_id:asc,part_id:asc,copy_number:asc")


async def attach_relations(conn: Conn, tenant_id: Any, rows: list[Row],
                           names: tuple[str, ...]) -> None:
    """`include=line_items,print_jobs,shipment`: one query per relation for the whole page."""
    ids = [row["id"] for row in rows]
    if "line_items" in names:
        items = await fetch_related(conn, LINE_ITEMS, tenant_id, "order_id", ids)
        for row in rows:
            row["line_items"] = items.get(row["id"], [])
    if "print_jobs" in names:
        jobs = await fetch_related(conn, ORDER_JOBS, tenant_id, "order_id", ids)
        for row in rows:
            row["print_jobs"] = jobs.get(row["id"], [])
    if "shipment" in names:
        shipments = await fetch_related(conn, SHIPMENTS, tenant_id, "order_id", ids)
        for row in rows:
            row["shipment"] = next(iter(shipments.get(row["id"], [])), None)


async def order_detail(conn: Conn, tenant_id: Any, order_id: uuid.UUID) -> Row:
    row = await fetch_one(conn, ORDERS, tenant_id, order_id, "order")
    await attach_relations(conn, tenant_id, [row], RELATIONS)
    return row


list_routes("/orders", ORDERS, permission="orders.read",
            name="orders", item=OrderOut, tag=TAG, expand=attach_relations)


@api.route("GET", "/orders/{order_id}", "Get an order with its line items, print jobs and "
           "shipment", response=OrderDetail, tags=(TAG,),
           permission="orders.read")
async def get_order(request: Request) -> Row:
    order_id = parse_id(request.path_params["order_id"], "order")
    async with deps(request).pool.acquire() as conn:
        return await order_detail(conn, tenant_of(request), order_id)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text = Field(min_length=1, max_length=500)


async def _open_order(conn: Any, tenant_id: uuid.UUID, request: Request) -> uuid.UUID:
    """The order of the path, 404 if it is not this tenant's, 409 if it is closed."""
    order_id = parse_id(request.path_params["order_id"], "order")
    status = await conn.fetchval("SELECT status FROM orders WHERE tenant_id = $1 AND id = $2",
                                 tenant_id, order_id)
    if status is None:
        raise Problem(404, f"order {order_id} not found")
    if status in CLOSED_ORDERS:
        raise Problem(409, f"order {order_id} is already {status}")
    return order_id


@api.route("POST", "/orders/{order_id}/cancel", "Cancel an order with a reason: its queued jobs "
           "and parcel are cancelled asynchronously; answers with the order as it is now",
           body=ReasonIn, response=OrderDetail, status=202, tags=(TAG,),
           example={"reason": "customer asked by phone"}, permission="orders.cancel")
async def cancel_order(request: Request, body: ReasonIn) -> Response:
    tenant_id = tenant_of(request)
    async with deps(request).pool.acquire() as conn:
        order_id = await _open_order(conn, tenant_id, request)
        async with conn.transaction():
            await outbox.send(conn, CancelOrder(
                tenant_id=tenant_id, order_id=order_id, reason=body.reason))
        row = await order_detail(conn, tenant_id, order_id)
    return json_response(OrderDetail.model_validate(row).model_dump(mode="json"), 202)


@api.route("POST", "/orders/{order_id}/hold", "Hold an order with a reason: none of its jobs "
           "starts until it is released (prints already running finish)", body=ReasonIn,
           response=OrderDetail, tags=(TAG,), example={"reason": "address to be confirmed"},
           permission="orders.hold")
async def hold_order(request: Request, body: ReasonIn) -> Row:
    tenant_id = tenant_of(request)
    async with deps(request).pool.acquire() as conn:
        order_id = await _open_order(conn, tenant_id, request)
    await ask(request, HoldOrder(tenant_id=tenant_id, order_id=order_id, reason=body.reason,
                                 by="operator"))
    async with deps(request).pool.acquire() as conn:
        return await order_detail(conn, tenant_id, order_id)


@api.route("POST", "/orders/{order_id}/release", "Release a held order: its line items are "
           "expanded again against today's product mappings", response=OrderDetail,
           tags=(TAG,), permission="orders.release")
async def release_order(request: Request) -> Row:
    tenant_id = tenant_of(request)
    async with deps(request).pool.acquire() as conn:
        order_id = await _open_order(conn, tenant_id, request)
    await ask(request, ReleaseOrder(tenant_id=tenant_id, order_id=order_id, by="operator"))
    async with deps(request).pool.acquire() as conn:
        return await order_detail(conn, tenant_id, order_id)


@api.route("POST", "/orders", "Create an order for a sale outside Shopify: printed and shipped "
           "by Sendcloud like any order, with no Shopify fulfilment; the same reference again "
           "answers the order it made (200)", body=OrderDraft, response=OrderDetail,
           status=201, tags=(TAG,), permission="orders.create", example={
               "reference": "fair-2026-0042", "email": "jane@example.com",
               "shipping_address": {"name": "Jane Smith", "address1": "Stadhuisplein 10",
                                    "city": "Eindhoven", "zip": "5611 EM",
                                    "country_code": "NL"},
               "line_items": [{"sku": "BENCHY-PLA-RED", "quantity": 3}]})
async def create_order(request: Request, body: OrderDraft) -> Response:
    tenant_id = tenant_of(request)
    made = await ask(request, CreateOrder(tenant_id=tenant_id, draft=body))
    async with deps(request).pool.acquire() as conn:
        row = await order_detail(conn, tenant_id, uuid.UUID(made["order_id"]))
    return json_response(OrderDetail.model_validate(row).model_dump(mode="json"),
                         201 if made["created"] else 200)
