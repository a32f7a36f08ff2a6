"""What a host lends its entities, built once per host process from `Settings`.

Everything an entity reaches beyond its own rows is here, typed: the database pool, a `Sender`
for non-durable messages (a Ray router in production, `StubSender` in tests), the tenant's live
channel, the shared SimplyPrint sessions and the slicer pool. Handlers never read the
environment or look services up by string.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from forma3d.db.pool import Pool
from forma3d.domain.gridflock.planner import Plate
from forma3d.domain.gridflock.profiles import DEFAULT_SLICING, PrinterProfile, SliceSettings
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock.plates import Kind, PlateResult
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.integrations.simplyprint import SimplyPrintClient
from forma3d.messaging.live import live_channel
from forma3d.messaging.message import Message
from forma3d.store.integrations import SettingsCache

log = logging.getLogger(__name__)

PUBLISH_EVERY = 0.05  # seconds: live frames go out in one Redis pipeline per host
FARM_CALLS_PER_HOST = 32


class Sender(Protocol):
    """Non-durable delivery to entities. Anything a job depends on goes through the outbox
    (forma3d.store.outbox.send) instead: a tell may be lost with its host."""

    def tell(self, message: Message) -> None: ...

    def tell_later(self, message: Message, delay: float) -> None:
        """Deliver after `delay` seconds (a timer, not a blocked handler)."""

    async def tell_many(self, messages: Sequence[Message]) -> int:
        """Deliver and wait for the replies; returns how many were answered."""


class Slicer(Protocol):
    """Runs plate work (OpenSCAD, slicers) somewhere with CPUs: the Ray slicer pool, or
    `LocalSlicer` in this process; raises `SlicerUnavailable` when it went away itself."""

    async def run(self, kind: Kind, plates: Sequence[Plate], profile: PrinterProfile | None,
                  engine: GridflockEngine = "manifold",
                  slicing: SliceSettings = DEFAULT_SLICING) -> list[PlateResult]: ...


class Live:
    """Best-effort frames onto a tenant's live channel (dashboards tolerate a missed frame):
    queued and sent in one pipeline every PUBLISH_EVERY, so a thousand frames a second cost
    twenty round trips, not a thousand. Without a Redis URL it drops frames."""

    def __init__(self, redis_url: str | None, max_queued: int = 100_000) -> None:
        self.redis_url = redis_url
        self.max_queued = max_queued
        self.queue: list[tuple[str, str]] = []
        self._flusher: asyncio.Task[None] | None = None

    def publish(self, tenant_id: uuid.UUID | str, message: dict[str, Any]) -> None:
        if not self.redis_url:
            return
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(self.redis_url))
        if len(self.queue) < self.max_queued:
            self.queue.append((live_channel(str(tenant_id)), json.dumps(message, default=str)))

    async def _flush(self, redis_url: str) -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(redis_url)
        while True:
            await asyncio.sleep(PUBLISH_EVERY)
            if not self.queue:
                continue
            batch = list(self.queue)
            del self.queue[:]
            try:
                async with client.pipeline(transaction=False) as pipe:
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except Exception as error:
                log.debug("live publish failed: %s", error)

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()


class FarmSessions:
    """The tenants' SimplyPrint clients, one per host and tenant (their connection pool and rate
    limit pause shared by the tenant's printers), behind a gate of FARM_CALLS_PER_HOST
    conversations at once: a cold start or a hundred printers coming back online queue here
    instead of stampeding the farm's API into timeouts that would stall everyone."""

    def __init__(self, calls: int = FARM_CALLS_PER_HOST) -> None:
        self.gate = asyncio.Semaphore(calls)
        self.clients: dict[uuid.UUID, tuple[SimplyPrintSettings, SimplyPrintClient]] = {}
        # One connection pool (and TLS context) per host for every tenant's client.
        self.transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=calls * 2))

    @contextlib.asynccontextmanager
    async def session(self, tenant_id: uuid.UUID,
                      settings: SimplyPrintSettings) -> AsyncIterator[SimplyPrintClient]:
        async with self.gate:
            found = self.clients.get(tenant_id)
            if found is None or found[0] != settings:
                client = SimplyPrintClient(settings.company_id, settings.api_key,
                                           base_url=settings.base_url,
                                           files_url=settings.files_url,
                                           transport=self.transport)
                found = self.clients[tenant_id] = (settings, client)
            yield found[1]


@dataclass
class Observations:
    """Applied farm observations and a bounded sample of their event-to-state lag."""

    count: int = 0
    lags: list[float] = field(default_factory=list)
    limit: int = 500_000

    def add(self, lag_seconds: float) -> None:
        self.count += 1
        if len(self.lags) < self.limit:
            self.lags.append(lag_seconds)

    def take(self) -> dict[str, Any]:
        taken = {"count": self.count, "lags": self.lags}
        self.count, self.lags = 0, []
        return taken


@dataclass
class Services:
    pool: Pool
    sender: Sender
    host_index: int = 0
    live: Live = field(default_factory=lambda: Live(None))
    farm: FarmSessions = field(default_factory=FarmSessions)
    slicer: Slicer | None = None
    observations: Observations = field(default_factory=Observations)
    # The tenants' integration settings, dropped as a change commits (the host watches).
    integrations: SettingsCache = field(default_factory=SettingsCache)
    # Long-running work an entity started in this host (GridFlock pipelines), by entity key.
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
