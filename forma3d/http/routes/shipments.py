"""Shipments: parcels and their tracking, read from PostgreSQL; the label PDF on demand (never
inside a list, which says only whether one exists)."""

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
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Column, QuerySpec
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
    has_label: Annotated[bool, Column("(s.label IS NOT NULL)")]
    carrier_status_id: int | None
    carrier_status: str | None
    status_at: datetime | None
    shopify_fulfillment_id: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime


SHIPMENTS = QuerySpec.of(ShipmentOut, "shipments s", default_sort="created_at:desc")

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
