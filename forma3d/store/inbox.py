"""The webhook inbox: verified deliveries stored once per delivery key, then processed; the ones
whose processing failed are dead letters until an operator retries them.

The HTTP ingress stores a delivery (a replay of the same key inserts nothing) together with the
tenant's outbox message, in one transaction; under load, `GroupCommit` writes the deliveries
that arrive within a few milliseconds in one transaction, and each request is answered only
after that commit. The tenant's entity reads a delivery, acts on it and marks it processed (with
the reason when it could not use it), or dead-letters it when processing failed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from forma3d.db.pool import Connection, Pool
from forma3d.domain.events import EventType
from forma3d.messaging.message import Message
from forma3d.store import events
from forma3d.store.outbox import send, send_many

# Failures that repeat on every attempt (the data, not the moment, is wrong): they dead-letter the
# delivery at once. Anything else (a lost connection, a timeout) is left to the outbox's retries.
PERMANENT_FAILURES: tuple[type[Exception], ...] = (
    asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ValueError, TypeError,
    KeyError, AttributeError, UnicodeError)
REASON_CHARS = 1000


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


@dataclass(frozen=True)
class Arrival:
    """A verified delivery to store, and the tenant message that processes it once stored."""

    tenant_id: uuid.UUID
    source: str
    delivery_key: str
    topic: str
    headers: dict[str, Any]
    body: bytes
    message: Callable[[int], Message]


async def store(conn: Connection, tenant_id: uuid.UUID, source: str, delivery_key: str,
                topic: str, headers: dict[str, Any], body: bytes) -> int | None:
    """The new delivery's id, or None when this key was already stored (a replay)."""
    inbox_id: int | None = await conn.fetchval(
        """INSERT INTO webhook_inbox (tenant_id, source, delivery_key, topic, headers, body)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant_id, source, delivery_key) DO NOTHING RETURNING id""",
        tenant_id, source, delivery_key, topic, headers, body)
    return inbox_id


async def accept(conn: Connection, arrivals: list[Arrival]) -> list[int | None]:
    """Store many deliveries and send the message of each new one, in the caller's transaction;
    per arrival its id, or None for a replay (also of an earlier arrival in the same list)."""
    first: dict[tuple[uuid.UUID, str, str], int] = {}
    for index, a in enumerate(arrivals):
        first.setdefault((a.tenant_id, a.source, a.delivery_key), index)
    unique = [arrivals[i] for i in sorted(first.values())]
    rows = await conn.fetch(
        """INSERT INTO webhook_inbox (tenant_id, source, delivery_key, topic, headers, body)
           SELECT t, s, k, p, h::jsonb, b
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
                AS u(t, s, k, p, h, b)
           ON CONFLICT (tenant_id, source, delivery_key) DO NOTHING
           RETURNING id, tenant_id, source, delivery_key""",
        [a.tenant_id for a in unique], [a.source for a in unique],
        [a.delivery_key for a in unique], [a.topic for a in unique],
        [json.dumps(a.headers) for a in unique], [a.body for a in unique])
    stored = {(r["tenant_id"], r["source"], r["delivery_key"]): r["id"] for r in rows}
    ids: list[int | None] = []
    for index, a in enumerate(arrivals):
        key = (a.tenant_id, a.source, a.delivery_key)
        ids.append(stored.get(key) if first[key] == index else None)
    await send_many(conn, [a.message(i) for a, i in zip(arrivals, ids, strict=True)
                           if i is not None])
    return ids


@dataclass
class GroupCommit:
    """Writes the deliveries that arrive within `window` seconds in one transaction.

    One commit (one WAL flush, a handful of round trips) then serves a whole burst instead of
    each request paying its own; every caller still waits for the commit of its own delivery.
    If a batch fails, its deliveries are stored one by one, so one bad row fails only itself.
    """

    pool: Pool
    window: float = 0.002
    max_batch: int = 512
    _waiting: list[tuple[Arrival, asyncio.Future[int | None]]] = field(default_factory=list)
    _timer: asyncio.Task[None] | None = None

    async def accept(self, arrival: Arrival) -> int | None:
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((arrival, future))
        if len(self._waiting) >= self.max_batch:
            self._flush_now()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())
        return await future

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.window)
        self._timer = None
        self._flush_now()

    def _flush_now(self) -> None:
        batch, self._waiting = self._waiting, []
        if batch:
            asyncio.create_task(self._commit(batch))  # noqa: RUF006  (futures hold the result)

    async def _commit(self, batch: list[tuple[Arrival, asyncio.Future[int | None]]]) -> None:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                ids = await accept(conn, [a for a, _ in batch])
        except Exception as error:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(error)
                return
            for one in batch:
                await self._commit([one])
            return
        for (_, future), inbox_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(inbox_id)


async def unprocessed(db: Pool | Connection, tenant_id: uuid.UUID,
                      inbox_id: int) -> Delivery | None:
    """The tenant's delivery if it still waits to be processed (None if unknown or done)."""
    row = await db.fetchrow(
        "SELECT id, tenant_id, source, topic, body, received_at, processed_at, error"
        " FROM webhook_inbox WHERE tenant_id = $1 AND id = $2", tenant_id, inbox_id)
    if row is None or row["processed_at"] is not None:
        return None
    return Delivery(**dict(row.items()))


async def delivery(db: Pool | Connection, tenant_id: uuid.UUID, inbox_id: int) -> Delivery | None:
    """The tenant's stored delivery, processed or not (None if unknown)."""
    row = await db.fetchrow(
        "SELECT id, tenant_id, source, topic, body, received_at, processed_at, error"
        " FROM webhook_inbox WHERE tenant_id = $1 AND id = $2", tenant_id, inbox_id)
    return Delivery(**dict(row.items())) if row is not None else None


async def mark_processed(db: Pool | Connection, tenant_id: uuid.UUID, inbox_id: int,
                         error: str | None = None) -> None:
    """Done with the delivery; `error` says why it was not used (kept for operators)."""
    await db.execute(
        "UPDATE webhook_inbox SET processed_at = now(), error = $3,"
        " attempts = attempts + 1 WHERE tenant_id = $1 AND id = $2", tenant_id, inbox_id, error)


async def dead_letter(conn: Connection, tenant_id: uuid.UUID, inbox_id: int,
                      reason: str) -> bool:
    """Processing failed for good: keep the reason, record the event; False if already done."""
    row = await conn.fetchrow(
        """UPDATE webhook_inbox SET processed_at = now(), dead_lettered_at = now(), error = $3,
                  attempts = attempts + 1
           WHERE tenant_id = $1 AND id = $2 AND processed_at IS NULL
           RETURNING source, topic, attempts""",
        tenant_id, inbox_id, reason[:REASON_CHARS])
    if row is None:
        return False
    await events.record(conn, EventType.WEBHOOK_DEAD_LETTERED, tenant_id,
                        {"inbox_id": inbox_id, "source": row["source"], "topic": row["topic"],
                         "reason": reason[:REASON_CHARS], "attempts": row["attempts"]},
                        subject=("webhook", inbox_id))
    return True


async def revive(conn: Connection, tenant_id: uuid.UUID, inbox_id: int,
                 message: Callable[[str, int], Message]) -> Delivery | None:
    """A dead letter back to processing: unmarked, its message sent again, the event recorded;
    None if the tenant has no such dead letter."""
    row = await conn.fetchrow(
        """UPDATE webhook_inbox SET processed_at = NULL, dead_lettered_at = NULL, error = NULL
           WHERE tenant_id = $1 AND id = $2 AND dead_lettered_at IS NOT NULL
           RETURNING id, tenant_id, source, topic, body, received_at, processed_at, error""",
        tenant_id, inbox_id)
    if row is None:
        return None
    delivery = Delivery(**dict(row.items()))
    await send(conn, message(delivery.source, delivery.id))
    await events.record(conn, EventType.WEBHOOK_RETRIED, tenant_id,
                        {"inbox_id": inbox_id, "source": delivery.source,
                         "topic": delivery.topic}, subject=("webhook", inbox_id))
    return delivery


async def dead_letter_count(db: Pool | Connection, tenant_id: uuid.UUID) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1"
        " AND dead_lettered_at IS NOT NULL", tenant_id)
    return count
