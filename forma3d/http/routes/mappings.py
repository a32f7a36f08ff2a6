"""Product mappings: SKU (+ optional variant) -> printable parts; several parts make an assembly.

Reads go straight to PostgreSQL; every change is a command to the tenant's entity, which owns
the mappings (and tells itself, durably, that the SKU is mapped, so held orders resume).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from forma3d.http.deps import ask, deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Conn, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, fetch_related, list_routes
from forma3d.messaging.catalog import CreateMapping, DeleteMapping, MappingDraft, ReplaceMapping

TAG = "product-mappings"


class PartOut(BaseModel):
    id: uuid.UUID
    mapping_id: uuid.UUID
    name: str
    file_id: uuid.UUID
    quantity: int
    print_profile: str | None
    grams: Decimal
    required_tags: list[str]
    position: int


class MappingOut(BaseModel):
    id: uuid.UUID
    sku: str
    variant_id: str
    name: str
    packaging_grams: Decimal
    packaging_cm: list[Decimal] | None
    created_at: datetime
    updated_at: datetime
    parts: list[PartOut]


MAPPINGS = QuerySpec.of(MappingOut, "product_mappings m", default_sort="sku:asc",
                        includes=frozenset({"parts"}))
PARTS = QuerySpec.of(PartOut, "mapping_parts p", default_sort="position:asc")


async def attach_parts(conn: Conn, tenant_id: Any, rows: list[Row], names: tuple[str, ...]
                       ) -> None:
    parts = await fetch_related(conn, PARTS, tenant_id, "mapping_id", [r["id"] for r in rows])
    for row in rows:
        row["parts"] = parts.get(row["id"], [])


async def _mapping(conn: Conn, tenant_id: Any, mapping_id: uuid.UUID) -> Row:
    row = await fetch_one(conn, MAPPINGS, tenant_id, mapping_id, "product mapping")
    await attach_parts(conn, tenant_id, [row], ("parts",))
    return row


list_routes("/product-mappings", MAPPINGS, permission="mappings.read",
            name="product_mappings", item=MappingOut, tag=TAG,
            expand=attach_parts, always=("parts",))


@api.route("POST", "/product-mappings", "Create a product mapping", body=MappingDraft,
           response=MappingOut, status=201, tags=(TAG,),
           permission="mappings.write")
async def create_mapping(request: Request, body: MappingDraft) -> Row:
    tenant_id = tenant_of(request)
    if any(p.id is not None for p in body.parts):
        raise Problem(422, "a new mapping has no parts to keep",
                      errors=[{"field": "parts", "message": "omit part ids on create"}])
    mapping_id = await ask(request, CreateMapping(tenant_id=tenant_id, mapping=body))
    async with deps(request).pool.acquire() as conn:
        return await _mapping(conn, tenant_id, mapping_id)


@api.route("GET", "/product-mappings/{mapping_id}", "Get a product mapping with its parts",
           response=MappingOut, tags=(TAG,),
           permission="mappings.read")
async def get_mapping(request: Request) -> Row:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    async with deps(request).pool.acquire() as conn:
        return await _mapping(conn, tenant_of(request), mapping_id)


@api.route("PUT", "/product-mappings/{mapping_id}", "Replace a product mapping (parts with an "
           "id are kept and updated, others added, missing ones removed)", body=MappingDraft,
           response=MappingOut, tags=(TAG,),
           permission="mappings.write")
async def replace_mapping(request: Request, body: MappingDraft) -> Row:
    tenant_id = tenant_of(request)
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    await ask(request, ReplaceMapping(tenant_id=tenant_id, mapping_id=mapping_id, mapping=body))
    async with deps(request).pool.acquire() as conn:
        return await _mapping(conn, tenant_id, mapping_id)


@api.route("DELETE", "/product-mappings/{mapping_id}", "Delete a product mapping not yet used "
           "by any order", status=204, tags=(TAG,),
           permission="mappings.write")
async def delete_mapping(request: Request) -> Response:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    await ask(request, DeleteMapping(tenant_id=tenant_of(request), mapping_id=mapping_id))
    return Response(status_code=204)
