"""Shipments: parcels and their tracking, read from PostgreSQL; the label PDF on demand (never
inside a list, which says only whether one exists)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.shipping.states import ShipmentStatus
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Field, FieldType, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes

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
    has_label: bool
    carrier_status_id: int | None
    carrier_status: str | None
    status_at: datetime | None
    shopify_fulfillment_id: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime


SHIPMENTS = QuerySpec(
    table="shipments s",
    tenant_column="s.tenant_id",
    default_sort="created_at:desc",
    fields=(
        Field("id", FieldType.UUID, "s.id"),
        Field("order_id", FieldType.UUID, "s.order_id"),
        Field("status", FieldType.ENUM, "s.status", choices=tuple(ShipmentStatus)),
        Field("external_reference", column="s.external_reference"),
        Field("parcel_id", FieldType.INT, "s.parcel_id"),
        Field("carrier", column="s.carrier"),
        Field("tracking_number", column="s.tracking_number"),
        Field("tracking_url", column="s.tracking_url"),
        Field("weight_kg", FieldType.DECIMAL, "s.weight_kg"),
        Field("has_label", FieldType.BOOL, "(s.label IS NOT NULL)"),
        Field("carrier_status_id", FieldType.INT, "s.carrier_status_id"),
        Field("carrier_status", column="s.carrier_status"),
        Field("status_at", FieldType.DATETIME, "s.status_at"),
        Field("shopify_fulfillment_id", FieldType.INT, "s.shopify_fulfillment_id"),
        Field("error", column="s.error"),
        Field("created_at", FieldType.DATETIME, "s.created_at"),
        Field("updated_at", FieldType.DATETIME, "s.updated_at"),
    ),
)

list_routes("/shipments", SHIPMENTS, name="shipments", item=ShipmentOut, tag=TAG)


@api.route("GET", "/shipments/{shipment_id}", "Get a shipment", response=ShipmentOut,
           tags=(TAG,))
async def get_shipment(request: Request) -> Row:
    shipment_id = parse_id(request.path_params["shipment_id"], "shipment")
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, SHIPMENTS, tenant_of(request), shipment_id, "shipment")


@api.route("GET", "/shipments/{shipment_id}/label", "Download the shipping label (PDF)",
           tags=(TAG,))
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
