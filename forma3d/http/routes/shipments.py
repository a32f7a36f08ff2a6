"""Shipments: parcels and their tracking, read from PostgreSQL; the label PDF on demand (never
inside a list, which says only whether one exists); the operator's retry of a failed shipment
or a refused fulfilment, asked of the order entity."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.shipping.states import ShipmentStatus
from forma3d.http.deps import ask, deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Column, QuerySpec
from forma3d.http.routes.api import API_PREFIX, api
from forma3d.http.routes.listing import Row, fetch_one, list_routes
from forma3d.http.routing import json_response
from forma3d.messaging.order import RetryShipment

TAG = "shipments"


class ShipmentOut(BaseModel):
    id: uuid.UUID
    order_id: uuid.UUID
    status: ShipmentStatus
    external_reference: str
    parcel_id: int | None
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    weight_kg: Decimal | None
    has_label: Annotated[bool, Column("(s.label IS NOT NULL)")]
    label_url: Annotated[str | None, Column(
        "CASE WHEN s.label IS NULL THEN NULL"
        f" ELSE '{API_PREFIX}/shipments/' || s.id::text || '/label' END", filterable=False,
        sortable=False)]
    shipping_method: str | None
    service_point_id: str | None
    create_failures: int
    carrier_status_id: int | None
    carrier_status: str | None
    status_at: datetime | None
    shopify_fulfillment_id: int | None
    error: str | None
    fulfilment_error: str | None
    api_version: str
    carrier_shipment_id: str | None
    carrier_status_code: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


SHIPMENTS = QuerySpec.of(ShipmentOut, "shipments s", default_sort="created_at:desc")

list_routes("/shipments", SHIPMENTS, permission="shipments.read",
            name="shipments", item=ShipmentOut, tag=TAG)


@api.route("GET", "/shipments/{shipment_id}", "Get a shipment", response=ShipmentOut,
           tags=(TAG,),
           permission="shipments.read")
async def get_shipment(request: Request) -> Row:
    shipment_id = parse_id(request.path_params["shipment_id"], "shipment")
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, SHIPMENTS, tenant_of(request), shipment_id, "shipment")


@api.route("GET", "/shipments/{shipment_id}/label", "Download the shipping label (PDF)",
           tags=(TAG,),
           permission="shipments.read")
async def get_shipment_label(request: Request) -> Response:
    shipment_id = parse_id(request.path_params["shipment_id"], "shipment")
    row = await deps(request).pool.fetchrow(
        "SELECT label, tracking_number FROM shipments WHERE tenant_id = $1 AND id = $2",
        tenant_of(request), shipment_id)
    if row is None:
        raise Problem(404, f"shipment {shipment_id} not found")
    if row["label"] is None:
        raise Problem(404, f"shipment {shipment_id} has no label yet")
    name = f"label-{re.sub(r'[^A-Za-z0-9_-]', '', row['tracking_number'] or '') or shipment_id}.pdf"
    return Response(bytes(row["label"]), media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api.route("POST", "/orders/{order_id}/ship", "Retry shipping an order whose shipment failed or "
           "whose Shopify fulfilment was refused; answers with the shipment as it is now",
           response=ShipmentOut, status=202, tags=(TAG,),
           permission="shipments.retry")
async def retry_shipping(request: Request) -> Response:
    tenant_id = tenant_of(request)
    order_id = parse_id(request.path_params["order_id"], "order")
    pool = deps(request).pool
    if await pool.fetchval("SELECT 1 FROM orders WHERE tenant_id = $1 AND id = $2",
                           tenant_id, order_id) is None:
        raise Problem(404, f"order {order_id} not found")
    await ask(request, RetryShipment(tenant_id=tenant_id, order_id=order_id, by="operator"))
    shipment_id = await pool.fetchval(  # the retry made sure the order has one
        "SELECT id FROM shipments WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id)
    async with pool.acquire() as conn:
        row = await fetch_one(conn, SHIPMENTS, tenant_id, shipment_id, "shipment")
    return json_response(ShipmentOut.model_validate(row).model_dump(mode="json"), 202)
