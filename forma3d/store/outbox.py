"""The outbox table: durable messages written in the sender's transaction, and the dispatcher's
claim, finish and retry of them.

A message exists exactly when the change that caused it exists; the dispatcher claims pending rows
under a lease, so a crash anywhere means redelivery (made harmless by handled_messages).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from forma3d.db.pool import Connection, Pool
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.message import Message

CHANNEL = "forma3d_outbox"


async def enqueue(conn: Connection, envelope: Envelope) -> None:
    """Write a durable message in the current transaction; delivered after commit. A message id
    already written is not written again."""
    await conn.execute(
        """INSERT INTO outbox (message_id, tenant_id, target_kind, target_key, message_type,
                               payload, correlation_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING""",
        uuid.UUID(envelope.message_id), uuid.UUID(envelope.tenant_id), envelope.kind,
        envelope.key, envelope.type, envelope.payload, envelope.correlation_id,
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def send(conn: Connection, message: Message, *,
               message_id: uuid.UUID | str | None = None) -> None:
    """Send a message durably: written in the caller's transaction, delivered after commit.
    A deterministic `message_id` makes a repeated send a no-op (the row exists once)."""
    await enqueue(conn, message.envelope(durable=True, message_id=message_id))


async def send_many(conn: Connection, messages: list[Message]) -> None:
    """Send many messages durably in one statement (the webhook ingress's group commit)."""
    if not messages:
        return
    envelopes = [m.envelope(durable=True) for m in messages]
    await conn.execute(
        """INSERT INTO outbox (message_id, tenant_id, target_kind, target_key, message_type,
                               payload, correlation_id)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                $6::jsonb[], $7::text[])
           ON CONFLICT (message_id) DO NOTHING""",
        [uuid.UUID(e.message_id) for e in envelopes], [uuid.UUID(e.tenant_id) for e in envelopes],
        [e.kind for e in envelopes], [e.key for e in envelopes], [e.type for e in envelopes],
        [e.payload for e in envelopes], [e.correlation_id for e in envelopes])
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def claim(pool: Pool, batch_size: int, lease_seconds: float) -> list[Any]:
    """Pending rows whose time has come, leased to the caller; oldest first."""
    return list(await pool.fetch(
        """UPDATE outbox o
           SET claimed_until = now() + make_interval(secs => $2), attempts = o.attempts + 1
           WHERE o.id IN (
               SELECT id FROM outbox
               WHERE done_at IS NULL AND available_at <= now()
                 AND (claimed_until IS NULL OR claimed_until < now())
               ORDER BY available_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
           RETURNING o.*""",
        batch_size, lease_seconds,
    ))


async def finish(pool: Pool, row_id: int, error: str | None) -> None:
    """Delivered, or refused for good (the error stays visible on the row)."""
    await pool.execute(
        "UPDATE outbox SET done_at = now(), claimed_until = NULL, last_error = $2 WHERE id = $1",
        row_id, error,
    )


async def retry_later(pool: Pool, row_id: int, delay_seconds: float, error: str) -> None:
    await pool.execute(
        "UPDATE outbox SET available_at = now() + make_interval(secs => $2),"
        " claimed_until = NULL, last_error = $3 WHERE id = $1", row_id, delay_seconds, error,
    )


async def pending(pool: Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE done_at IS NULL")
    return count


async def release_claims(pool: Pool) -> int:
    """Drop every lease on pending rows, so they are claimed again at once: only for the
    cluster's one dispatcher, at its start, when the leases' holder is known dead."""
    result: str = await pool.execute(
        "UPDATE outbox SET claimed_until = NULL WHERE done_at IS NULL"
        " AND claimed_until IS NOT NULL")
    return int(result.split()[-1])


# A dead letter: a message refused for good (done, with the refusal kept as its last error).
DEAD = "done_at IS NOT NULL AND last_error IS NOT NULL"


@dataclass(frozen=True)
class Backlog:
    """What the metrics report of the outbox: messages not yet delivered, the age of the oldest
    of them (0 when none) and the dead letters."""

    pending: int
    oldest_pending_seconds: float
    dead_letters: int


async def backlog(pool: Pool) -> Backlog:
    row = await pool.fetchrow(
        f"""SELECT (SELECT count(*) FROM outbox WHERE done_at IS NULL) AS pending,
                   (SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)
                      FROM outbox WHERE done_at IS NULL) AS oldest,
                   (SELECT count(*) FROM outbox WHERE {DEAD}) AS dead""")
    assert row is not None
    return Backlog(int(row["pending"]), float(row["oldest"]), int(row["dead"]))


async def requeue(conn: Connection, tenant_id: uuid.UUID, row_id: int) -> bool:
    """An operator's requeue of a dead letter: pending again, due now, its attempts counted
    afresh; the last error stays until a delivery succeeds. False when the tenant has no such
    dead letter. The entity never marked a refused message handled, so it is applied anew."""
    found = await conn.fetchval(
        f"""UPDATE outbox SET done_at = NULL, available_at = now(), claimed_until = NULL,
                              attempts = 0
             WHERE id = $1 AND tenant_id = $2 AND {DEAD} RETURNING id""", row_id, tenant_id)
    if found is None:
        return False
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return True
