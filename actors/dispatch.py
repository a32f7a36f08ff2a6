"""The fleet around the printer entities: per-host services (a router for non-durable tells, the
tenant's Redis channel), the FleetActor (one per tenant: printers/Get sync, waking ready
printers) and the FleetClock Ray actor that drives them.

Telemetry and wake-ups are non-durable tells: losing one costs a few seconds until the next
sync, never a job. Everything a job depends on goes through PostgreSQL and the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import ray

from actors.entity import Entity, EntityContext, query, step
from actors.router import EntityRouter
from forma3d import logs
from forma3d.db.pool import Pool, connect, create_pool
from forma3d.domain.printing.fleet import observe_row
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.integrations.simplyprint import SimplyPrintClient
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.live import live_channel
from forma3d.store.integrations import load_integration

log = logging.getLogger(__name__)
FLEET_CLOCK_NAME = "forma3d-fleet-clock"
QUEUE_CHANNEL = "forma3d_queue"
HOSTS_ENV = "FORMA3D_ENTITY_HOSTS"

SMART_TENANTS = """SELECT tenant_id FROM integrations WHERE service = 'simplyprint' AND enabled
    AND coalesce(config->>'dispatch_mode', '') = 'smart'"""
# Smart tenants with work waiting: the periodic wake-up skips everyone else.
WAITING_TENANTS = SMART_TENANTS + """ AND EXISTS (SELECT 1 FROM print_jobs j
    WHERE j.tenant_id = integrations.tenant_id AND j.status = 'QUEUED' AND NOT j.held
      AND j.farm_queue_item_id IS NULL)"""


def router_of(ctx: EntityContext) -> EntityRouter | None:
    """A router for tells from inside a host (the host count comes from the runtime env)."""
    router: EntityRouter | None = ctx.services.get("router")
    if router is None and os.environ.get(HOSTS_ENV):
        with contextlib.suppress(Exception):
            router = ctx.services["router"] = EntityRouter.connect(int(os.environ[HOSTS_ENV]))
    return router


def tell_later(ctx: EntityContext, envelope: Envelope, delay: float) -> None:
    """Deliver a non-durable message after `delay` seconds (a timer, not a blocked handler)."""
    router = router_of(ctx)
    if router is None:
        return

    async def fire() -> None:
        await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            router.tell(envelope)

    tasks: set[asyncio.Task[None]] = ctx.services.setdefault("timers", set())
    task = asyncio.create_task(fire())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


PUBLISH_EVERY = 0.05  # seconds: frames published in one Redis pipeline per host


async def publish(ctx: EntityContext, tenant_id: str, message: dict[str, Any]) -> None:
    """Best effort onto the tenant's live channel (dashboards tolerate a missed frame): queued
    and sent in one pipeline per host every PUBLISH_EVERY, so a thousand frames a second cost
    twenty round trips, not a thousand."""
    if not os.environ.get("REDIS_URL"):
        return
    queue: list[tuple[str, str]] | None = ctx.services.get("live_queue")
    if queue is None:
        queue = ctx.services["live_queue"] = []
        ctx.services["live_flusher"] = asyncio.create_task(_flush_live(ctx, queue))
    if len(queue) < 100_000:
        queue.append((live_channel(tenant_id), json.dumps(message, default=str)))


async def _flush_live(ctx: EntityContext, queue: list[tuple[str, str]]) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(os.environ["REDIS_URL"])
    while True:
        await asyncio.sleep(PUBLISH_EVERY)
        if not queue:
            continue
        batch = queue[:]
        del queue[:]
        try:
            async with client.pipeline(transaction=False) as pipe:
                for channel, data in batch:
                    pipe.publish(channel, data)
                await pipe.execute()
        except Exception as error:
            log.debug("live publish failed: %s", error)


FARM_CALLS_PER_HOST = 32


def farm_gate(ctx: EntityContext) -> asyncio.Semaphore:
    """At most FARM_CALLS_PER_HOST SimplyPrint conversations at once per host: a cold start or
    a hundred printers coming back online queue here instead of stampeding the farm's API
    into timeouts (and retries) that would stall everyone."""
    gate: asyncio.Semaphore | None = ctx.services.get("farm_gate")
    if gate is None:
        gate = ctx.services["farm_gate"] = asyncio.Semaphore(FARM_CALLS_PER_HOST)
    return gate


@contextlib.asynccontextmanager
async def farm_session(ctx: EntityContext, tenant_id: uuid.UUID,
                       settings: SimplyPrintSettings) -> AsyncIterator[SimplyPrintClient]:
    """The tenant's SimplyPrint client, one per host and tenant (its connection pool and rate
    limit pause are shared by the tenant's printers, and not rebuilt per call), behind the
    host's farm gate."""
    clients: dict[uuid.UUID, tuple[SimplyPrintSettings, SimplyPrintClient]] = (
        ctx.services.setdefault("farm_clients", {}))
    async with farm_gate(ctx):
        found = clients.get(tenant_id)
        if found is None or found[0] != settings:
            # One connection pool (and TLS context) per host for every tenant's client.
            transport = ctx.services.get("farm_transport")
            if transport is None:
                transport = ctx.services["farm_transport"] = httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_connections=FARM_CALLS_PER_HOST * 2))
            client = SimplyPrintClient(settings.company_id, settings.api_key,
                                       base_url=settings.base_url, files_url=settings.files_url,
                                       transport=transport)
            found = clients[tenant_id] = (settings, client)
        yield found[1]


def observed(ctx: EntityContext, lag_seconds: float) -> None:
    """Count an applied farm observation and keep a bounded sample of its event-to-state lag."""
    stats: dict[str, Any] = ctx.services.setdefault("observations", {"count": 0, "lags": []})
    stats["count"] += 1
    if len(stats["lags"]) < 500_000:
        stats["lags"].append(lag_seconds)


async def deliver_grouped(router: EntityRouter, envelopes: list[Envelope]) -> int:
    """One Ray call per host instead of one per message: how a sync reaches 5,000 printers."""
    groups: dict[int, list[Envelope]] = defaultdict(list)
    for envelope in envelopes:
        groups[router.hosts.index(router.host_for(envelope))].append(envelope)
    replies = await asyncio.gather(*(router.hosts[i].deliver_many.remote(batch)
                                     for i, batch in groups.items()), return_exceptions=True)
    return sum(len(r) for r in replies if isinstance(r, list))


class FleetActor(Entity):
    """One per tenant: registers farm printers and feeds every printer entity its row."""

    kind = "fleet"

    async def activate(self) -> None:
        self.tenant_id = uuid.UUID(self.key)
        self.synced = 0

    @step("fleet.sync")
    async def sync(self, envelope: Envelope) -> int:
        sp = await load_integration(self.ctx.pool, self.tenant_id, SimplyPrintSettings)
        router = router_of(self.ctx)
        if sp is None or router is None:
            return 0
        async with sp.client() as client:
            farm = await client.all_printers()
        now = time.time()
        ids = await self._register([p.id for p in farm], {p.id: p.name for p in farm})
        envelopes = [Envelope("printer", str(ids[p.id]), "printer.observe", self.key,
                              observe_row(p.raw, now).as_payload()) for p in farm]
        self.synced += 1
        delivered = await deliver_grouped(router, envelopes)
        await deliver_grouped(router, [
            Envelope("printer", str(r["printer_id"]), "printer.reconcile", self.key,
                     {"print_job_id": str(r["id"])}) for r in await self.stuck()])
        return delivered

    async def stuck(self) -> list[Any]:
        """Jobs on a printer with no change for the tenant's `stuck_job_seconds` (default 30
        min): their printers check them against the farm and its job history."""
        return list(await self.ctx.pool.fetch(
            """SELECT j.id, j.printer_id FROM print_jobs j JOIN tenants t ON t.id = j.tenant_id
               WHERE j.tenant_id = $1 AND j.status IN ('ASSIGNED', 'PRINTING')
                 AND j.printer_id IS NOT NULL
                 AND j.updated_at < now() - make_interval(secs =>
                     coalesce((t.settings->>'stuck_job_seconds')::float8, 1800))""",
            self.tenant_id))

    async def _register(self, farm_ids: list[int], names: dict[int, str]) -> dict[int, Any]:
        """Our printer row for every farm printer, created on first sight."""
        async with self.ctx.pool.acquire() as conn:
            await conn.executemany(
                """INSERT INTO printers (id, tenant_id, name, external_id, farm_printer_id)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (tenant_id, farm_printer_id) DO NOTHING""",
                [(uuid.uuid4(), self.tenant_id, names[f] or f"printer {f}", str(f), f)
                 for f in farm_ids])
            rows = await conn.fetch("SELECT id, farm_printer_id FROM printers"
                                    " WHERE tenant_id = $1 AND farm_printer_id = ANY($2)",
                                    self.tenant_id, farm_ids)
        return {r["farm_printer_id"]: r["id"] for r in rows}

    @step("fleet.wake")
    async def wake(self, envelope: Envelope) -> int:
        """Ask every idle, enabled, ready, online printer to pull a job (new work arrived)."""
        router = router_of(self.ctx)
        if router is None:
            return 0
        rows = await self.ctx.pool.fetch(
            """SELECT p.id FROM printers p WHERE p.tenant_id = $1 AND p.online AND p.enabled
                 AND p.ready AND p.state = 'operational' AND p.current_job_id IS NULL""",
            self.tenant_id)
        return await deliver_grouped(router, [
            Envelope("printer", str(r["id"]), "printer.dispatch", self.key) for r in rows])

    @query("fleet.status")
    async def status(self, envelope: Envelope) -> dict[str, Any]:
        return {"tenant_id": self.key, "synced": self.synced}

    @query("fleet.host_observations")
    async def host_observations(self, envelope: Envelope) -> dict[str, Any]:
        """This host's observation count and lag samples (taken, then reset): for benchmarks."""
        stats: dict[str, Any] = self.ctx.services.get("observations") or {"count": 0, "lags": []}
        self.ctx.services["observations"] = {"count": 0, "lags": []}
        return {"host": self.ctx.host_index, **stats}


async def tenants(pool: Pool, sql: str) -> list[str]:
    return [str(r["tenant_id"]) for r in await pool.fetch(sql)]


@ray.remote(num_cpus=0)
class FleetClock:
    """Syncs smart-dispatch tenants' printers every `sync_seconds` and wakes a tenant's ready
    printers when a job of theirs is queued (NOTIFY from the print_jobs trigger)."""

    def __init__(self, database_url: str, host_count: int, sync_seconds: float,
                 wake_seconds: float) -> None:
        logs.configure(os.environ.get("FORMA3D_LOG_LEVEL", "INFO"))
        self.database_url = database_url
        self.host_count = host_count
        self.sync_seconds = sync_seconds
        self.wake_seconds = wake_seconds
        self.tasks: list[asyncio.Task[None]] = []
        self.counts = {"syncs": 0, "wakes": 0}

    async def start(self) -> bool:
        if not self.tasks:
            pool = await create_pool(self.database_url, max_size=2)
            router = EntityRouter.connect(self.host_count)
            self.tasks = [asyncio.create_task(self._wake_loop(pool, router))]
            if self.sync_seconds > 0:
                self.tasks.append(asyncio.create_task(self._sync_loop(pool, router)))
        return True

    async def _sync_loop(self, pool: Pool, router: EntityRouter) -> None:
        while True:
            with contextlib.suppress(Exception):
                ts = await tenants(pool, SMART_TENANTS)
                await asyncio.gather(*(router.deliver(Envelope("fleet", t, "fleet.sync", t),
                                                      max(60.0, self.sync_seconds))
                                       for t in ts), return_exceptions=True)
                self.counts["syncs"] += 1
            await asyncio.sleep(self.sync_seconds)

    async def _wake_loop(self, pool: Pool, router: EntityRouter) -> None:
        """Woken by NOTIFY (payload: tenant id), and every `wake_seconds` for every smart
        tenant with queued work anyway, so a missed notification delays a job, never strands
        it."""
        pending: set[str] = set()
        inflight: set[str] = set()
        tasks: set[asyncio.Task[None]] = set()
        event = asyncio.Event()

        def heard(*args: Any) -> None:
            pending.add(str(args[3]))
            event.set()

        listener = await connect(self.database_url)
        await listener.add_listener(QUEUE_CHANNEL, heard)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), self.wake_seconds)
                event.clear()
                if not pending:
                    with contextlib.suppress(Exception):
                        pending.update(await tenants(pool, WAITING_TENANTS))
                await asyncio.sleep(0.05)  # let a burst of queued jobs coalesce
                # One wake-up in flight per tenant: a slow one is followed by one more, never
                # by a pile of them.
                batch = [t for t in pending if t not in inflight]
                pending.difference_update(batch)
                for tenant in batch:
                    inflight.add(tenant)
                    task = asyncio.create_task(self._wake(router, tenant, inflight))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                self.counts["wakes"] += len(batch)
        finally:
            await listener.close()

    async def _wake(self, router: EntityRouter, tenant: str, inflight: set[str]) -> None:
        try:
            await router.deliver(Envelope("fleet", tenant, "fleet.wake", tenant), 300.0)
        except Exception as error:  # the next round wakes it again
            log.debug("fleet.wake for %s failed: %s", tenant, error)
        finally:
            inflight.discard(tenant)

    async def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **self.counts,
                "running": bool(self.tasks) and not any(t.done() for t in self.tasks)}
