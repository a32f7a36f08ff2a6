"""EntityHost: one Ray actor process that carries thousands of logical entities.

Each entity has its own lock (its mailbox): one message at a time per entity, different
entities concurrently. Entities activate on their first message and passivate when idle.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import ray

from actors.entity import Entity, EntityContext, HandlerKind, entity_class
from actors.message import Envelope, Reply
from forma3d import logs
from forma3d.db.pool import Connection, Pool, create_pool
from forma3d.integrations.errors import TransientError
from forma3d.platform.integrations import IntegrationMissing

log = logging.getLogger(__name__)

# Errors worth another delivery: the database or network hiccupped, not the message.
TRANSIENT = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
             asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError,
             TransientError, IntegrationMissing)


@dataclass
class Slot:
    entity: Entity
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: bool = False
    last_used: float = field(default_factory=time.monotonic)
    # The newest waiting latest-wins message of each type (see actors.entity.step).
    latest: dict[str, Envelope] = field(default_factory=dict)


class EntityHostCore:
    """The host's logic without Ray, so it can be tested and embedded directly."""

    def __init__(self, index: int, host_count: int, database_url: str,
                 idle_seconds: float = 600.0, pool_size: int = 10) -> None:
        self.index = index
        self.host_count = host_count
        self.database_url = database_url
        self.idle_seconds = idle_seconds
        self.pool_size = pool_size
        self.slots: dict[str, Slot] = {}
        self.handled = 0
        self.activations = 0
        self._pool: Pool | None = None
        self._ctx: EntityContext | None = None
        self._start_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    async def _context(self) -> EntityContext:
        if self._ctx is None:
            async with self._start_lock:
                if self._ctx is None:
                    self._pool = await create_pool(self.database_url, max_size=self.pool_size)
                    self._ctx = EntityContext(self._pool, self.index)
                    self._reaper = asyncio.create_task(self._reap_idle())
        return self._ctx

    def _slot(self, envelope: Envelope, ctx: EntityContext) -> Slot:
        slot = self.slots.get(envelope.address)
        if slot is None:
            entity = entity_class(envelope.kind)(envelope.key, ctx)
            slot = self.slots[envelope.address] = Slot(entity)
        return slot

    async def deliver(self, envelope: Envelope) -> Reply:
        ctx = await self._context()
        slot = self._slot(envelope, ctx)
        handler = slot.entity.handlers.get(envelope.type)
        if handler is not None and handler.latest_wins and not envelope.durable:
            waiting = envelope.type in slot.latest
            slot.latest[envelope.type] = envelope
            if waiting:
                return Reply(value="superseded")  # the waiting delivery applies this one
        token = logs.correlation_id.set(envelope.correlation_id)
        try:
            async with slot.lock:
                envelope = slot.latest.pop(envelope.type, envelope)
                slot.last_used = time.monotonic()
                try:
                    return await self._handle(slot, envelope, ctx)
                except Exception as error:
                    # Memory may now disagree with PostgreSQL: reload on the next message.
                    slot.active = False
                    transient = isinstance(error, TRANSIENT)
                    if not transient:
                        log.warning("%s refused %s: %s", envelope.address, envelope.type, error)
                    return Reply(error=str(error) or type(error).__name__,
                                 error_type=type(error).__name__, retryable=transient)
        finally:
            logs.correlation_id.reset(token)

    async def _handle(self, slot: Slot, envelope: Envelope, ctx: EntityContext) -> Reply:
        entity = slot.entity
        if not slot.active:
            await entity.activate()
            slot.active = True
            self.activations += 1
        handler = entity.handlers.get(envelope.type)
        if handler is None:
            raise LookupError(f"{envelope.kind} has no handler for {envelope.type!r}")
        assert self._pool is not None
        if handler.kind == HandlerKind.QUERY:
            return Reply(await handler.fn(entity, envelope))
        if handler.kind == HandlerKind.STEP:
            if envelope.durable and await self._pool.fetchval(
                "SELECT true FROM handled_messages WHERE message_id = $1", envelope.message_id
            ):
                return Reply(duplicate=True)
            value = await handler.fn(entity, envelope)
            if envelope.durable:
                await self._mark_handled(self._pool, envelope)
            self.handled += 1
            return Reply(value)
        async with self._pool.acquire() as conn, conn.transaction():
            if envelope.durable and not await self._mark_handled(conn, envelope):
                return Reply(duplicate=True)
            value = await handler.fn(entity, envelope, conn)
        self.handled += 1
        return Reply(value)

    @staticmethod
    async def _mark_handled(db: Pool | Connection, envelope: Envelope) -> bool:
        fresh: bool | None = await db.fetchval(
            "INSERT INTO handled_messages (message_id, tenant_id, entity_key)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            envelope.message_id, envelope.tenant_id, envelope.address,
        )
        return bool(fresh)

    async def _reap_idle(self) -> None:
        interval = min(30.0, max(0.05, self.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self.idle_seconds
            for address, slot in list(self.slots.items()):
                if slot.last_used < cutoff and not slot.lock.locked():
                    del self.slots[address]
                    if slot.active:
                        await slot.entity.passivate()

    def status(self) -> dict[str, Any]:
        return {"index": self.index, "pid": os.getpid(), "entities": len(self.slots),
                "active": sum(s.active for s in self.slots.values()),
                "handled": self.handled, "activations": self.activations}

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        if self._pool is not None:
            await self._pool.close()


@ray.remote(num_cpus=0)
class EntityHost:
    """The Ray actor around EntityHostCore (named, detached, restarted after a crash)."""

    def __init__(self, index: int, host_count: int, database_url: str,
                 idle_seconds: float = 600.0) -> None:
        logs.configure(os.environ.get("FORMA3D_LOG_LEVEL", "INFO"))
        self.core = EntityHostCore(index, host_count, database_url, idle_seconds)

    async def deliver(self, envelope: Envelope) -> Reply:
        return await self.core.deliver(envelope)

    async def deliver_many(self, envelopes: list[Envelope]) -> list[Reply]:
        return list(await asyncio.gather(*(self.core.deliver(e) for e in envelopes)))

    async def status(self) -> dict[str, Any]:
        return self.core.status()

    async def has_entity(self, address: str) -> bool:
        return address in self.core.slots
