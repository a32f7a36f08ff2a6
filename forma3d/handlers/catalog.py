"""The tenant's product mappings: created, replaced and deleted by its entity, one at a time.

Every create or replace tells the tenant, through the outbox in the same transaction, that the
SKU is mapped now (`MappingChanged`), so orders held for it resume even if the host dies right
after.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import asyncpg

from forma3d.db.pool import Connection
from forma3d.handlers.registry import Handlers
from forma3d.handlers.services import Services
from forma3d.messaging.catalog import (
    CreateMapping,
    DeleteMapping,
    MappingDraft,
    ReplaceMapping,
)
from forma3d.messaging.refusals import Conflict, Invalid, NotFound
from forma3d.messaging.tenant import MappingChanged
from forma3d.store import mappings, outbox


class TenantScope(Protocol):
    """What these handlers need of the tenant's state (the tenant entity's `Tenant`)."""

    services: Services
    tenant_id: uuid.UUID


HANDLERS: Handlers[TenantScope] = Handlers()


async def _check_parts(conn: Connection, tenant_id: uuid.UUID, draft: MappingDraft,
                       mapping_id: uuid.UUID | None) -> None:
    """Every file must be this tenant's, every kept part this mapping's (Invalid names them)."""
    files = {r["id"] for r in await conn.fetch(
        "SELECT id FROM print_files WHERE tenant_id = $1 AND id = ANY($2)",
        tenant_id, [p.file_id for p in draft.parts])}
    own = {r["id"] for r in await conn.fetch(
        "SELECT id FROM mapping_parts WHERE tenant_id = $1 AND mapping_id = $2",
        tenant_id, mapping_id)} if mapping_id else set()
    errors = [(f"parts.{i}.file_id", f"no print file {p.file_id}")
              for i, p in enumerate(draft.parts) if p.file_id not in files]
    errors += [(f"parts.{i}.id", f"no part {p.id} in this mapping")
               for i, p in enumerate(draft.parts) if p.id is not None and p.id not in own]
    ids = [p.id for p in draft.parts if p.id is not None]
    if len(ids) != len(set(ids)):
        errors.append(("parts", "a part id appears more than once"))
    if errors:
        raise Invalid(errors)


def _specs(draft: MappingDraft) -> tuple[mappings.MappingSpec, list[mappings.PartSpec]]:
    spec = mappings.MappingSpec(sku=draft.sku, name=draft.name, variant_id=draft.variant_id,
                                packaging_grams=draft.packaging_grams,
                                packaging_cm=draft.packaging_cm)
    parts = [mappings.PartSpec(name=p.name, file_id=p.file_id, quantity=p.quantity,
                               grams=p.grams, print_profile=p.print_profile,
                               required_tags=list(p.required_tags), id=p.id)
             for p in draft.parts]
    return spec, parts


def _taken(draft: MappingDraft) -> Conflict:
    variant = f" variant {draft.variant_id!r}" if draft.variant_id else ""
    return Conflict(f"a mapping for SKU {draft.sku!r}{variant} exists")


async def _announce(conn: Connection, tenant_id: uuid.UUID, draft: MappingDraft) -> None:
    await outbox.send(conn, MappingChanged(tenant_id=tenant_id, sku=draft.sku,
                                           variant_id=draft.variant_id))


@HANDLERS.command(CreateMapping)
async def create_mapping(tenant: TenantScope, message: CreateMapping,
                         conn: Connection) -> uuid.UUID:
    draft = message.mapping
    if any(p.id is not None for p in draft.parts):
        raise Invalid([("parts", "omit part ids on create")])
    await _check_parts(conn, tenant.tenant_id, draft, None)
    try:
        mapping_id = await mappings.create_mapping(conn, tenant.tenant_id, *_specs(draft))
    except asyncpg.UniqueViolationError:
        raise _taken(draft) from None
    await _announce(conn, tenant.tenant_id, draft)
    return mapping_id


@HANDLERS.command(ReplaceMapping)
async def replace_mapping(tenant: TenantScope, message: ReplaceMapping,
                          conn: Connection) -> uuid.UUID:
    draft, mapping_id = message.mapping, message.mapping_id
    found = await conn.fetchval(
        "SELECT id FROM product_mappings WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.tenant_id, mapping_id)
    if found is None:
        raise NotFound(f"product mapping {mapping_id} not found")
    await _check_parts(conn, tenant.tenant_id, draft, mapping_id)
    try:
        await mappings.update_mapping(conn, tenant.tenant_id, mapping_id, *_specs(draft))
    except asyncpg.UniqueViolationError:
        raise _taken(draft) from None
    await _announce(conn, tenant.tenant_id, draft)
    return mapping_id


@HANDLERS.command(DeleteMapping)
async def delete_mapping(tenant: TenantScope, message: DeleteMapping,
                         conn: Connection) -> None:
    mapping_id = message.mapping_id
    try:
        deleted = await mappings.delete_mapping(conn, tenant.tenant_id, mapping_id)
    except asyncpg.ForeignKeyViolationError:
        raise Conflict(f"product mapping {mapping_id} is used by orders; change it instead of "
                       "deleting it") from None
    if not deleted:
        raise NotFound(f"product mapping {mapping_id} not found")
