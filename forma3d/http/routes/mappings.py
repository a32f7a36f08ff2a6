"""Product mappings: SKU (+ optional variant) -> printable parts; several parts make an assembly.

Every create or update tells the tenant entity, through the outbox in the same transaction,
that the SKU is mapped now, so orders held for it resume even if the process dies right after.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from forma3d import logs
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Conn, FieldType, QuerySpec
from forma3d.http.query import Field as QField
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, fetch_related, list_routes
from forma3d.messaging.envelope import Envelope
from forma3d.store.outbox import enqueue

TAG = "product-mappings"


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: uuid.UUID | None = Field(None, description="an existing part of this mapping to keep "
                                 "(its print jobs keep their identity); omit for a new part")
    name: str = Field(min_length=1, max_length=120)
    file_id: uuid.UUID
    quantity: int = Field(1, ge=1, le=1000)
    print_profile: str | None = Field(None, max_length=120)
    grams: Decimal = Field(Decimal(0), ge=0, lt=10**8, decimal_places=2)
    required_tags: list[str] = Field(default_factory=list, max_length=32)


class MappingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=255)
    variant_id: str = Field("", max_length=64)
    name: str = Field(min_length=1, max_length=255)
    packaging_grams: Decimal = Field(Decimal(0), ge=0, lt=10**8, decimal_places=2)
    parts: list[PartIn] = Field(min_length=1, max_length=100)


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
    created_at: datetime
    updated_at: datetime
    parts: list[PartOut]


MAPPINGS = QuerySpec(
    table="product_mappings m",
    tenant_column="m.tenant_id",
    default_sort="sku:asc",
    includes=frozenset({"parts"}),
    fields=(
        QField("id", FieldType.UUID, "m.id"),
        QField("sku", column="m.sku"),
        QField("variant_id", column="m.variant_id"),
        QField("name", column="m.name"),
        QField("packaging_grams", FieldType.DECIMAL, "m.packaging_grams"),
        QField("created_at", FieldType.DATETIME, "m.created_at"),
        QField("updated_at", FieldType.DATETIME, "m.updated_at"),
    ),
)
PARTS = QuerySpec(
    table="mapping_parts p",
    tenant_column="p.tenant_id",
    default_sort="position:asc",
    fields=(
        QField("id", FieldType.UUID, "p.id"),
        QField("mapping_id", FieldType.UUID, "p.mapping_id"),
        QField("name", column="p.name"),
        QField("file_id", FieldType.UUID, "p.file_id"),
        QField("quantity", FieldType.INT, "p.quantity"),
        QField("print_profile", column="p.print_profile"),
        QField("grams", FieldType.DECIMAL, "p.grams"),
        QField("required_tags", column="p.required_tags", filterable=False, sortable=False),
        QField("position", FieldType.INT, "p.position"),
    ),
)


async def attach_parts(conn: Conn, tenant_id: Any, rows: list[Row], names: tuple[str, ...]
                       ) -> None:
    parts = await fetch_related(conn, PARTS, tenant_id, "mapping_id", [r["id"] for r in rows])
    for row in rows:
        row["parts"] = parts.get(row["id"], [])


async def _mapping(conn: Conn, tenant_id: Any, mapping_id: uuid.UUID) -> Row:
    row = await fetch_one(conn, MAPPINGS, tenant_id, mapping_id, "product mapping")
    await attach_parts(conn, tenant_id, [row], ("parts",))
    return row


async def _check_parts(conn: Conn, tenant_id: Any, body: MappingIn,
                       mapping_id: uuid.UUID | None) -> None:
    """Every file must be this tenant's, every kept part this mapping's: 422 naming the field."""
    files = {r["id"] for r in await conn.fetch(
        "SELECT id FROM print_files WHERE tenant_id = $1 AND id = ANY($2)",
        tenant_id, [p.file_id for p in body.parts])}
    own = {r["id"] for r in await conn.fetch(
        "SELECT id FROM mapping_parts WHERE tenant_id = $1 AND mapping_id = $2",
        tenant_id, mapping_id)} if mapping_id else set()
    errors = [{"field": f"parts.{i}.file_id", "message": f"no print file {p.file_id}"}
              for i, p in enumerate(body.parts) if p.file_id not in files]
    errors += [{"field": f"parts.{i}.id", "message": f"no part {p.id} in this mapping"}
               for i, p in enumerate(body.parts) if p.id is not None and p.id not in own]
    ids = [p.id for p in body.parts if p.id is not None]
    if len(ids) != len(set(ids)):
        errors.append({"field": "parts", "message": "a part id appears more than once"})
    if errors:
        raise Problem(422, f"{len(errors)} field(s) failed validation", errors=errors)


async def _write_parts(conn: Conn, tenant_id: Any, mapping_id: uuid.UUID, body: MappingIn
                       ) -> None:
    """Kept parts are updated in place (their ids are in print-job keys); the rest replaced."""
    kept = [p.id for p in body.parts if p.id is not None]
    await conn.execute(
        "DELETE FROM mapping_parts WHERE tenant_id = $1 AND mapping_id = $2 AND NOT id = ANY($3)",
        tenant_id, mapping_id, kept)
    for position, part in enumerate(body.parts):
        await conn.execute(
            """INSERT INTO mapping_parts (id, tenant_id, mapping_id, name, file_id, quantity,
                                          print_profile, grams, required_tags, position)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, file_id = EXCLUDED.file_id,
                   quantity = EXCLUDED.quantity, print_profile = EXCLUDED.print_profile,
                   grams = EXCLUDED.grams, required_tags = EXCLUDED.required_tags,
                   position = EXCLUDED.position""",
            part.id or uuid.uuid4(), tenant_id, mapping_id, part.name, part.file_id,
            part.quantity, part.print_profile, part.grams, part.required_tags, position)


async def _announce(conn: Conn, tenant_id: uuid.UUID, body: MappingIn) -> None:
    tenant = str(tenant_id)
    await enqueue(conn, Envelope(  # type: ignore[arg-type]  # a pool connection proxies one
        "tenant", tenant, "mapping.changed", tenant,
        {"sku": body.sku, "variant_id": body.variant_id},
        correlation_id=logs.correlation_id.get(), durable=True))


def _conflict(body: MappingIn) -> Problem:
    variant = f" variant {body.variant_id!r}" if body.variant_id else ""
    return Problem(409, f"a mapping for SKU {body.sku!r}{variant} exists")


list_routes("/product-mappings", MAPPINGS, name="product_mappings", item=MappingOut, tag=TAG,
            expand=attach_parts, always=("parts",))


@api.route("POST", "/product-mappings", "Create a product mapping", body=MappingIn,
           response=MappingOut, status=201, tags=(TAG,))
async def create_mapping(request: Request, body: MappingIn) -> Row:
    tenant_id, mapping_id = tenant_of(request), uuid.uuid4()
    if any(p.id is not None for p in body.parts):
        raise Problem(422, "a new mapping has no parts to keep",
                      errors=[{"field": "parts", "message": "omit part ids on create"}])
    async with deps(request).pool.acquire() as conn:
        async with conn.transaction():
            await _check_parts(conn, tenant_id, body, None)
            try:
                await conn.execute(
                    """INSERT INTO product_mappings (id, tenant_id, sku, variant_id, name,
                                                     packaging_grams)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    mapping_id, tenant_id, body.sku, body.variant_id, body.name,
                    body.packaging_grams)
            except asyncpg.UniqueViolationError:
                raise _conflict(body) from None
            await _write_parts(conn, tenant_id, mapping_id, body)
            await _announce(conn, tenant_id, body)
        return await _mapping(conn, tenant_id, mapping_id)


@api.route("GET", "/product-mappings/{mapping_id}", "Get a product mapping with its parts",
           response=MappingOut, tags=(TAG,))
async def get_mapping(request: Request) -> Row:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    async with deps(request).pool.acquire() as conn:
        return await _mapping(conn, tenant_of(request), mapping_id)


@api.route("PUT", "/product-mappings/{mapping_id}", "Replace a product mapping (parts with an "
           "id are kept and updated, others added, missing ones removed)", body=MappingIn,
           response=MappingOut, tags=(TAG,))
async def replace_mapping(request: Request, body: MappingIn) -> Row:
    tenant_id = tenant_of(request)
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    async with deps(request).pool.acquire() as conn:
        async with conn.transaction():
            found = await conn.fetchval(
                "SELECT id FROM product_mappings WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
                tenant_id, mapping_id)
            if found is None:
                raise Problem(404, f"product mapping {mapping_id} not found")
            await _check_parts(conn, tenant_id, body, mapping_id)
            try:
                await conn.execute(
                    """UPDATE product_mappings SET sku = $3, variant_id = $4, name = $5,
                           packaging_grams = $6, updated_at = now()
                       WHERE tenant_id = $1 AND id = $2""",
                    tenant_id, mapping_id, body.sku, body.variant_id, body.name,
                    body.packaging_grams)
            except asyncpg.UniqueViolationError:
                raise _conflict(body) from None
            await _write_parts(conn, tenant_id, mapping_id, body)
            await _announce(conn, tenant_id, body)
        return await _mapping(conn, tenant_id, mapping_id)


@api.route("DELETE", "/product-mappings/{mapping_id}", "Delete a product mapping not yet used "
           "by any order", status=204, tags=(TAG,))
async def delete_mapping(request: Request) -> Response:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    try:
        deleted = await deps(request).pool.fetchval(
            "DELETE FROM product_mappings WHERE tenant_id = $1 AND id = $2 RETURNING id",
            tenant_of(request), mapping_id)
    except asyncpg.ForeignKeyViolationError:
        raise Problem(409, f"product mapping {mapping_id} is used by orders; change it "
                      "instead of deleting it") from None
    if deleted is None:
        raise Problem(404, f"product mapping {mapping_id} not found")
    return Response(status_code=204)
