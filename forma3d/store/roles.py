"""A tenant's custom roles (the built-in five live in forma3d.domain.permissions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict


@dataclass(frozen=True)
class CustomRole:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    description: str
    permissions: list[str]
    created_at: datetime
    updated_at: datetime


def _role(row: Any) -> CustomRole:
    return CustomRole(**record_to_dict(row))


async def list_roles(db: Pool | Connection, tenant_id: uuid.UUID) -> list[CustomRole]:
    rows = await db.fetch("SELECT * FROM roles WHERE tenant_id = $1 ORDER BY name", tenant_id)
    return [_role(r) for r in rows]


async def get_role(db: Pool | Connection, tenant_id: uuid.UUID,
                   role_id: uuid.UUID) -> CustomRole | None:
    row = await db.fetchrow("SELECT * FROM roles WHERE tenant_id = $1 AND id = $2",
                            tenant_id, role_id)
    return _role(row) if row else None


async def role_by_name(db: Pool | Connection, tenant_id: uuid.UUID,
                       name: str) -> CustomRole | None:
    row = await db.fetchrow("SELECT * FROM roles WHERE tenant_id = $1 AND name = $2",
                            tenant_id, name)
    return _role(row) if row else None


async def create_role(db: Pool | Connection, tenant_id: uuid.UUID, name: str, description: str,
                      permissions: list[str]) -> CustomRole | None:
    """The new role, or None when the tenant already has one of that name."""
    row = await db.fetchrow(
        """INSERT INTO roles (id, tenant_id, name, description, permissions)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, name) DO NOTHING RETURNING *""",
        uuid.uuid4(), tenant_id, name, description, sorted(set(permissions)))
    return _role(row) if row else None


async def update_role(db: Pool | Connection, tenant_id: uuid.UUID, role_id: uuid.UUID, *,
                      description: str | None, permissions: list[str] | None
                      ) -> CustomRole | None:
    row = await db.fetchrow(
        """UPDATE roles SET description = coalesce($3, description),
                            permissions = coalesce($4, permissions), updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING *""",
        tenant_id, role_id, description,
        sorted(set(permissions)) if permissions is not None else None)
    return _role(row) if row else None


async def role_in_use(db: Pool | Connection, tenant_id: uuid.UUID, name: str) -> bool:
    used: bool = await db.fetchval(
        """SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND role = $2)
               OR EXISTS (SELECT 1 FROM api_keys WHERE tenant_id = $1 AND role = $2
                                                  AND revoked_at IS NULL)""",
        tenant_id, name)
    return used


async def delete_role(db: Pool | Connection, tenant_id: uuid.UUID, role_id: uuid.UUID) -> bool:
    status: str = await db.execute("DELETE FROM roles WHERE tenant_id = $1 AND id = $2",
                                   tenant_id, role_id)
    return status.endswith(" 1")
