"""The webhook inbox: verified deliveries stored once per delivery key, then processed.

The HTTP ingress stores a delivery (a replay of the same key inserts nothing); the tenant's
entity reads it, acts on it and marks it processed, with the reason when it could not use it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forma3d.db.pool import Connection, Pool


@dataclass(frozen=True)
class Delivery:
    """One stored webhook delivery, raw as it arrived."""

    id: int
    tenant_id: uuid.UUID
    source: str
    topic: str
    body: bytes
    received_at: datetime
    processed_at: datetime | None
    error: str | None


async def store(conn: Connection, tenant_id: uuid.UUID, source: str, delivery_key: str,
                topic: str, headers: dict[str, Any], body: bytes) -> int | None:
    """The new delivery's id, or None when this key was already stored (a replay)."""
    inbox_id: int | None = await conn.fetchval(
        """INSERT INTO webhook_inbox (tenant_id, source, delivery_key, topic, headers, body)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant_id, source, delivery_key) DO NOTHING RETURNING id""",
        tenant_id, source, delivery_key, topic, headers, body)
    return inbox_id


async def unprocessed(db: Pool | Connection, tenant_id: uuid.UUID,
                      inbox_id: int) -> Delivery | None:
    """The tenant's delivery if it still waits to be processed (None if unknown or done)."""
    row = await db.fetchrow(
        "SELECT id, tenant_id, source, topic, body, received_at, processed_at, error"
        " FROM webhook_inbox WHERE tenant_id = $1 AND id = $2", tenant_id, inbox_id)
    if row is None or row["processed_at"] is not None:
        return None
    return Delivery(**dict(row.items()))


async def mark_processed(db: Pool | Connection, tenant_id: uuid.UUID, inbox_id: int,
                         error: str | None = None) -> None:
    """Done with the delivery; `error` says why it was not used (kept for operators)."""
    await db.execute(
        "UPDATE webhook_inbox SET processed_at = now(), error = $3"
        " WHERE tenant_id = $1 AND id = $2", tenant_id, inbox_id, error)
