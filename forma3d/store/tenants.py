"""Tenants: the shops/farms that share one deployment, each fully isolated."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.tenants import TenantSettings

DEFAULT_TENANT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class TenantError(ValueError):
    pass


async def create_tenant(
    db: Pool | Connection,
    slug: str,
    name: str | None = None,
    settings: dict[str, Any] | None = None,
) -> uuid.UUID:
    if not _SLUG.match(slug):
        raise TenantError(
            f"tenant slug {slug!r} must be 2-63 lowercase letters, digits or dashes"
        )
    tenant_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO tenants (id, slug, name, settings) VALUES ($1, $2, $3, $4)",
        tenant_id, slug, name or slug, settings or {},
    )
    return tenant_id


async def find_tenant(db: Pool | Connection, ref: str) -> dict[str, Any] | None:
    """Look a tenant up by id or slug."""
    try:
        row = await db.fetchrow("SELECT * FROM tenants WHERE id = $1", uuid.UUID(ref))
    except ValueError:
        row = await db.fetchrow("SELECT * FROM tenants WHERE slug = $1", ref)
    return record_to_dict(row) if row else None


async def tenant_settings(db: Pool | Connection, tenant_id: uuid.UUID) -> TenantSettings:
    raw = await db.fetchval("SELECT settings FROM tenants WHERE id = $1", tenant_id)
    return TenantSettings.model_validate(raw or {})


async def change_settings(conn: Connection, tenant_id: uuid.UUID,
                          changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `changes` (already validated as TenantSettings by the caller) into
    tenants.settings under the row's lock; returns the previous values of the keys that
    changed (empty: nothing changed). The caller records the event that names the change."""
    current = await conn.fetchval("SELECT settings FROM tenants WHERE id = $1 FOR UPDATE",
                                  tenant_id) or {}
    changed = {k: v for k, v in changes.items() if current.get(k) != v}
    if not changed:
        return {}
    await conn.execute("UPDATE tenants SET settings = settings || $2::jsonb WHERE id = $1",
                       tenant_id, changed)
    return {k: current.get(k) for k in changed}
