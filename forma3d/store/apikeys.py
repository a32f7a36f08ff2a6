"""Tenant-scoped API keys: shown once at creation, stored only as a SHA-256 hash.

Keys carry 32 random bytes, so a fast hash is safe (no dictionary to attack) and lets every
request authenticate with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from forma3d.db.pool import Connection, Pool

KEY_PREFIX = "f3d_"


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    key: str  # the only time the plaintext exists


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_api_key(db: Pool | Connection, tenant_id: uuid.UUID, name: str) -> CreatedKey:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4, $5)",
        key_id, tenant_id, name, key[:10], hash_key(key),
    )
    return CreatedKey(key_id, tenant_id, name, key)


async def tenant_for_key(db: Pool | Connection, key: str) -> uuid.UUID | None:
    """The tenant an unrevoked key belongs to, or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    tenant_id: uuid.UUID | None = await db.fetchval(
        "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_key(key),
    )
    return tenant_id


async def key_identity(db: Pool | Connection, key_hash: str) -> tuple[uuid.UUID, str] | None:
    """The id and name of the key with this hash (revoked or not), for the audit trail."""
    row = await db.fetchrow("SELECT id, name FROM api_keys WHERE key_hash = $1", key_hash)
    return (row["id"], row["name"]) if row else None
