"""handled_messages: the ids of durable messages an entity has applied, so a redelivery is a no-op.

A command records its message id in its own transaction; a step records it after it succeeded
(its external calls are idempotent by construction).
"""

from __future__ import annotations

from forma3d.db.pool import Connection, Pool
from forma3d.messaging.envelope import Envelope


async def seen(db: Pool | Connection, envelope: Envelope) -> bool:
    found = await db.fetchval("SELECT true FROM handled_messages WHERE message_id = $1",
                              envelope.message_id)
    return bool(found)


async def mark(db: Pool | Connection, envelope: Envelope) -> bool:
    """Record the message as handled; False if it already was."""
    fresh: bool | None = await db.fetchval(
        "INSERT INTO handled_messages (message_id, tenant_id, entity_key)"
        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
        envelope.message_id, envelope.tenant_id, envelope.address,
    )
    return bool(fresh)
