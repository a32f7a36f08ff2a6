"""Tenant-scoped API keys: shown once at creation (and at rotation), stored only as a SHA-256
hash.

Keys carry 32 random bytes, so a fast hash is safe (no dictionary to attack) and lets every
request authenticate with one indexed lookup. A key holds a role (built-in or the tenant's own),
or a list of permissions, or neither: then it is a full-power owner key, as every key made
before roles existed.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict

KEY_PREFIX = "f3d_"


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    key: str  # the only time the plaintext exists


@dataclass(frozen=True)
class KeyRecord:
    """A key as authentication sees it, with its custom role's permissions when it has one."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    role: str | None
    permissions: tuple[str, ...] | None  # the key's own list (None: from its role)
    role_permissions: tuple[str, ...] | None  # its custom role's (None: built in or no role)
    expires_at: datetime | None
    allowed_cidrs: tuple[str, ...]
    revoked: bool
    tenant_settings: dict[str, object]


@dataclass(frozen=True)
class KeyInfo:
    """A key as its tenant lists it: never its secret or hash."""

    id: uuid.UUID
    name: str
    prefix: str
    role: str | None
    permissions: list[str] | None
    expires_at: datetime | None
    allowed_cidrs: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_api_key(db: Pool | Connection, tenant_id: uuid.UUID, name: str, *,
                         role: str | None = None, permissions: list[str] | None = None,
                         expires_at: datetime | None = None,
                         allowed_cidrs: list[str] | None = None) -> CreatedKey:
    key = _secret()
    key_id = uuid.uuid4()
    await db.execute(
        """INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, permissions,
                                 expires_at, allowed_cidrs)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        key_id, tenant_id, name, key[:10], hash_key(key), role, permissions, expires_at,
        allowed_cidrs or [],
    )
    return CreatedKey(key_id, tenant_id, name, key)


async def key_for_secret(db: Pool | Connection, key: str) -> KeyRecord | None:
    """The key whose secret this is (revoked ones too, marked), or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    row = await db.fetchrow(
        """SELECT k.id, k.tenant_id, k.name, k.role, k.permissions, k.expires_at,
                  k.allowed_cidrs, k.revoked_at IS NOT NULL AS revoked,
                  r.permissions AS role_permissions, t.settings
             FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
             LEFT JOIN roles r ON r.tenant_id = k.tenant_id AND r.name = k.role
            WHERE k.key_hash = $1""",
        hash_key(key),
    )
    if row is None:
        return None
    return KeyRecord(
        row["id"], row["tenant_id"], row["name"], row["role"],
        tuple(row["permissions"]) if row["permissions"] is not None else None,
        tuple(row["role_permissions"]) if row["role_permissions"] is not None else None,
        row["expires_at"], tuple(row["allowed_cidrs"]), row["revoked"], row["settings"] or {})


async def tenant_for_key(db: Pool | Connection, key: str) -> uuid.UUID | None:
    """The tenant an unrevoked key belongs to, or None."""
    found = await key_for_secret(db, key)
    return found.tenant_id if found is not None and not found.revoked else None


_INFO = """SELECT id, name, prefix, role, permissions, expires_at, allowed_cidrs, created_at,
                  last_used_at, revoked_at FROM api_keys"""


def _info(row: Any) -> KeyInfo:
    return KeyInfo(**record_to_dict(row))


async def list_keys(db: Pool | Connection, tenant_id: uuid.UUID | None) -> list[KeyInfo]:
    """A tenant's keys (every tenant's with None), newest first."""
    rows = await db.fetch(
        f"{_INFO} WHERE $1::uuid IS NULL OR tenant_id = $1 ORDER BY created_at DESC, id",
        tenant_id)
    return [_info(r) for r in rows]


async def get_key(db: Pool | Connection, tenant_id: uuid.UUID, key_id: uuid.UUID
                  ) -> KeyInfo | None:
    row = await db.fetchrow(f"{_INFO} WHERE tenant_id = $1 AND id = $2", tenant_id, key_id)
    return _info(row) if row else None


async def revoke_key(db: Pool | Connection, tenant_id: uuid.UUID | None,
                     key_id: uuid.UUID) -> bool:
    """Revoke a key (of `tenant_id`, or any with None); False if there is no such live key."""
    status: str = await db.execute(
        """UPDATE api_keys SET revoked_at = now()
            WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) AND revoked_at IS NULL""",
        key_id, tenant_id)
    return status.endswith(" 1")


async def rotate_key(db: Pool | Connection, tenant_id: uuid.UUID,
                     key_id: uuid.UUID) -> str | None:
    """A new secret for a live key (the old one stops working); None if no such live key."""
    key = _secret()
    status: str = await db.execute(
        """UPDATE api_keys SET key_hash = $3, prefix = $4
            WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL""",
        key_id, tenant_id, hash_key(key), key[:10])
    return key if status.endswith(" 1") else None


async def touch_key(db: Pool | Connection, key_id: uuid.UUID) -> None:
    """Record that a key was used (the caller throttles how often)."""
    await db.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)
