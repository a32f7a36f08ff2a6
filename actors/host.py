"""EntityHost: one Ray actor process that carries thousands of logical entities.

Each entity has its own lock (its mailbox): one message at a time per entity, different
entities concurrently. Entities activate (their spec loads their state) on their first message
and passivate when idle. Which kinds exist is the explicit list in actors.entities.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import ray
from pydantic import ValidationError

from actors.sender import RaySender
from forma3d import logs
from forma3d.db.pool import Pool, create_pool
from forma3d.handlers.registry import EntitySpec, HandlerKind
from forma3d.handlers.services import Live, Sender, Services, Slicer
from forma3d.integrations.errors import IntegrationError, TransientError
from forma3d.integrations.settings import IntegrationMissing
from forma3d.messaging.envelope import Envelope, Reply, delivery_id
from forma3d.messaging.message import parse
from forma3d.platform import metrics
from forma3d.store import handled
from forma3d.store.integrations import note_failure

log = logging.getLogger(__name__)

# Errors worth another delivery: the database or network hiccupped, not the message.
TRANSIENT = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
             asyncpg.exceptions.SerializationError, asyncpg.exceptions.DeadlockDetectedError,
             TransientError, IntegrationMissing)


@dataclass
class Slot:
    spec: EntitySpec[Any]
    key: str
    state: Any = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: bool = False
    last_used: float = field(default_factory=time.monotonic)
    # The newest waiting latest-wins message of each type (see Handlers.step).
    latest: dict[str, Envelope] = field(default_factory=dict)


class EntityHostCore:
    """The host's logic without Ray, so it can be tested and embedded directly."""

    def __init__(self, index: int, host_count: int, database_url: str,
                 idle_seconds: float = 600.0, pool_size: int = 10, *,
                 specs: Sequence[EntitySpec[Any]] | None = None, sender: Sender | None = None,
                 redis_url: str | None = None, slicer: Slicer | None = None) -> None:
        if specs is None:
            from actors.entities import ENTITIES

            specs = ENTITIES
        self.specs = {spec.kind: spec for spec in specs}
        self.index = index
        self.host_count = host_count
        self.database_url = database_url
        self.idle_seconds = idle_seconds
        self.pool_size = pool_size
        self.sender = sender
        self.redis_url = redis_url
        self.slicer = slicer
        self.slots: dict[str, Slot] = {}
        self.handled = 0
        self.activations = 0
        self.in_flight = 0  # messages in this host: waiting for their entity or being handled
        self._tag = str(index)
        self._gauges_at = 0.0
        self._pool: Pool | None = None
        self._services: Services | None = None
        self._start_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def services(self) -> Services:
        if self._services is None:
            async with self._start_lock:
                if self._services is None:
                    self._pool = await create_pool(self.database_url, max_size=self.pool_size)
                    self._services = Services(
                        pool=self._pool, host_index=self.index,
                        sender=self.sender or RaySender(self.host_count),
                        live=Live(self.redis_url), slicer=self.slicer)
                    self._reaper = asyncio.create_task(self._reap_idle())
                    self._watcher = asyncio.create_task(
                        self._services.integrations.watch(self.database_url))
        return self._services

    def _slot(self, envelope: Envelope) -> Slot:
        slot = self.slots.get(envelope.address)
        if slot is None:
            spec = self.specs.get(envelope.kind)
            if spec is None:
                raise LookupError(f"no entity kind {envelope.kind!r}; known: {sorted(self.specs)}")
            slot = self.slots[envelope.address] = Slot(spec, envelope.key)
        return slot

    async def deliver(self, envelope: Envelope) -> Reply:
        self.in_flight += 1
        metrics.observe("forma3d_entity_mailbox_depth", self.in_flight, host=self._tag)
        try:
            return await self._deliver(envelope)
        finally:
            self.in_flight -= 1
            self._report_active()

    def _report_active(self, every: float = 1.0) -> None:
        """The active-entities gauge, at most once a second (it counts every slot)."""
        now = time.monotonic()
        if now - self._gauges_at >= every:
            self._gauges_at = now
            metrics.set_gauge("forma3d_entities_active",
                              sum(s.active for s in self.slots.values()), host=self._tag)

    async def _deliver(self, envelope: Envelope) -> Reply:
        services = await self.services()
        try:
            slot = self._slot(envelope)
        except LookupError as error:
            return Reply(error=str(error), error_type="LookupError")
        handler = slot.spec.handlers.table.get(envelope.type)
        if handler is not None and handler.latest_wins and not envelope.durable:
            waiting = envelope.type in slot.latest
            slot.latest[envelope.type] = envelope
            if waiting:
                return Reply(value="superseded")  # the waiting delivery applies this one
        token = logs.correlation_id.set(envelope.correlation_id)
        delivery = delivery_id.set(uuid.UUID(envelope.message_id) if envelope.durable else None)
        try:
            async with slot.lock:
                envelope = slot.latest.pop(envelope.type, envelope)
                slot.last_used = time.monotonic()
                try:
                    return await self._handle(slot, envelope, services)
                except Exception as error:
                    # Memory may now disagree with PostgreSQL: reload on the next message.
                    slot.active = False
                    transient = isinstance(error, TRANSIENT)
                    if isinstance(error, IntegrationError):
                        await _note(services, envelope, error)
                    if not transient:
                        log.warning("%s refused %s: %s", envelope.address, envelope.type, error)
                    return Reply(error=str(error) or type(error).__name__,
                                 error_type=type(error).__name__, retryable=transient)
        finally:
            delivery_id.reset(delivery)
            logs.correlation_id.reset(token)

    async def _handle(self, slot: Slot, envelope: Envelope, services: Services) -> Reply:
        handler = slot.spec.handlers.table.get(envelope.type)
        if handler is None:
            raise LookupError(f"{envelope.kind} has no handler for {envelope.type!r}")
        try:
            message = parse(envelope)
        except ValidationError as error:
            raise ValueError(f"malformed {envelope.type}: {error.errors()[:3]}") from None
        if not slot.active:
            slot.state = await slot.spec.load(services, slot.key)
            slot.active = True
            self.activations += 1
            metrics.inc("forma3d_entity_activations", host=self._tag)
        pool = services.pool
        if handler.kind == HandlerKind.QUERY:
            return Reply(await handler.fn(slot.state, message))
        if handler.kind == HandlerKind.STEP:
            if envelope.durable and await handled.seen(pool, envelope):
                return Reply(duplicate=True)
            value = await handler.fn(slot.state, message)
            if envelope.durable:
                await handled.mark(pool, envelope)
            self.handled += 1
            return Reply(value)
        async with pool.acquire() as conn, conn.transaction():
            if envelope.durable and not await handled.mark(conn, envelope):
                return Reply(duplicate=True)
            value = await handler.fn(slot.state, message, conn)
        self.handled += 1
        return Reply(value)

    async def _reap_idle(self) -> None:
        interval = min(30.0, max(0.05, self.idle_seconds / 4))
        while True:
            await asyncio.sleep(interval)
            cutoff = time.monotonic() - self.idle_seconds
            for address, slot in list(self.slots.items()):
                if slot.last_used < cutoff and not slot.lock.locked():
                    del self.slots[address]
                    if slot.active:
                        await slot.spec.unload(slot.state)
            self._report_active(every=0.0)

    def status(self) -> dict[str, Any]:
        return {"index": self.index, "pid": os.getpid(), "entities": len(self.slots),
                "active": sum(s.active for s in self.slots.values()),
                "handled": self.handled, "activations": self.activations}

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._services is not None:
            self._services.live.close()
        if self._pool is not None:
            await self._pool.close()


async def _note(services: Services, envelope: Envelope, error: IntegrationError) -> None:
    """A refusal of a tenant's credentials is kept on its connection (GET /integrations)."""
    try:
        tenant_id = getattr(parse(envelope), "tenant_id", None)
    except ValidationError:
        return
    if isinstance(tenant_id, uuid.UUID):
        await note_failure(services.pool, tenant_id, error)


@ray.remote(num_cpus=0)
class EntityHost:
    """The Ray actor around EntityHostCore (named, detached, restarted after a crash)."""

    def __init__(self, index: int, host_count: int, database_url: str,
                 idle_seconds: float = 600.0) -> None:
        from actors.slicer_pool import RaySlicer
        from forma3d.config import settings

        config = settings()
        logs.configure(config.log_level)
        self.core = EntityHostCore(index, host_count, database_url, idle_seconds,
                                   redis_url=config.redis_url, slicer=RaySlicer())

    async def deliver(self, envelope: Envelope) -> Reply:
        return await self.core.deliver(envelope)

    async def deliver_many(self, envelopes: list[Envelope]) -> list[Reply]:
        return list(await asyncio.gather(*(self.core.deliver(e) for e in envelopes)))

    async def status(self) -> dict[str, Any]:
        # The node it runs on: hosts spread over the cluster's nodes (actors/runtime.py).
        return {**self.core.status(), "node_id": ray.get_runtime_context().get_node_id()}

    async def has_entity(self, address: str) -> bool:
        return address in self.core.slots
