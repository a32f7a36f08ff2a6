"""The FleetClock Ray actor: drives the tenants' fleet entities (forma3d.handlers.fleet).

It syncs smart-dispatch tenants' printers every `sync_seconds` (SyncFleet) and wakes a tenant's
ready printers when a job of theirs is queued (WakeFleet, on the NOTIFY of the print_jobs
trigger, and every `wake_seconds` for tenants with queued work, so a missed notification delays a
job, never strands it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from typing import Any

import ray

from actors.loops import Heartbeat, Lazy, Loop, Loops
from actors.router import EntityRouter
from forma3d import logs
from forma3d.config import settings
from forma3d.db.pool import Pool, connect, create_pool
from forma3d.messaging.fleet import SyncFleet, WakeFleet

log = logging.getLogger(__name__)
FLEET_CLOCK_NAME = "forma3d-fleet-clock"
QUEUE_CHANNEL = "forma3d_queue"
WAKE_STALE_SECONDS = 30.0  # a wake round only lists tenants and spawns their wake-ups

SMART_TENANTS = """SELECT tenant_id FROM integrations WHERE service = 'simplyprint' AND enabled
    AND coalesce(config->>'dispatch_mode', 'smart') = 'smart'"""
# Smart tenants with work waiting: the periodic wake-up skips everyone else.
WAITING_TENANTS = SMART_TENANTS + """ AND EXISTS (SELECT 1 FROM print_jobs j
    WHERE j.tenant_id = integrations.tenant_id AND j.status = 'QUEUED' AND NOT j.held
      AND j.farm_queue_item_id IS NULL)"""


async def tenants(pool: Pool, sql: str) -> list[str]:
    return [str(r["tenant_id"]) for r in await pool.fetch(sql)]


@ray.remote(num_cpus=0)
class FleetClock:
    """Syncs smart-dispatch tenants' printers every `sync_seconds` and wakes a tenant's ready
    printers when a job of theirs is queued (NOTIFY from the print_jobs trigger)."""

    def __init__(self, database_url: str, host_count: int, sync_seconds: float,
                 wake_seconds: float) -> None:
        logs.configure(settings().log_level)
        self.database_url = database_url
        self.host_count = host_count
        self.sync_seconds = sync_seconds
        self.wake_seconds = wake_seconds
        self.counts = {"syncs": 0, "wakes": 0}
        self.connected = Lazy(self._connect)
        # Its loops start here, so a restart (Ray re-runs the constructor) resumes them.
        loops = [Loop("wake", self._wake_loop, stale_after=WAKE_STALE_SECONDS)]
        if sync_seconds > 0:
            loops.append(Loop("sync", self._sync_loop,
                              stale_after=_sync_timeout(sync_seconds) + WAKE_STALE_SECONDS))
        self.loops = Loops("fleet-clock", loops)
        self.loops.ensure_started()

    async def _connect(self) -> tuple[Pool, EntityRouter]:
        router = EntityRouter.connect(self.host_count)  # first: it does no I/O to undo
        return await create_pool(self.database_url, max_size=2), router

    async def start(self) -> bool:
        """Idempotent: the loops already run; starts any that never did."""
        self.loops.ensure_started()
        return True

    async def _sync_loop(self, heartbeat: Heartbeat) -> None:
        pool, router = await self.connected.get()
        while True:
            heartbeat.beat()
            try:
                ts = await tenants(pool, SMART_TENANTS)
                timeout = _sync_timeout(self.sync_seconds)
                await asyncio.gather(*(router.deliver(SyncFleet(tenant_id=uuid.UUID(t))
                                                      .envelope(), timeout)
                                       for t in ts), return_exceptions=True)
                self.counts["syncs"] += 1
            except Exception:
                log.exception("fleet sync round failed; next in %.0f s", self.sync_seconds)
            await heartbeat.sleep(self.sync_seconds)

    async def _wake_loop(self, heartbeat: Heartbeat) -> None:
        """Woken by NOTIFY (payload: tenant id), and every `wake_seconds` for every smart
        tenant with queued work anyway."""
        pool, router = await self.connected.get()
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
                await heartbeat.wait(event, self.wake_seconds)
                if listener.is_closed():  # NOTIFYs would stop: let the loop restart
                    raise ConnectionError("the queue listener's connection closed")
                event.clear()
                if not pending:
                    try:
                        pending.update(await tenants(pool, WAITING_TENANTS))
                    except Exception:
                        log.exception("fleet wake: listing waiting tenants failed")
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
            with contextlib.suppress(Exception):
                await listener.close()

    async def _wake(self, router: EntityRouter, tenant: str, inflight: set[str]) -> None:
        try:
            await router.deliver(WakeFleet(tenant_id=uuid.UUID(tenant)).envelope(), 300.0)
        except Exception as error:  # the next round wakes it again
            log.debug("fleet.wake for %s failed: %s", tenant, error)
        finally:
            inflight.discard(tenant)

    async def status(self) -> dict[str, Any]:
        self.loops.ensure_started()
        return {"pid": os.getpid(), **self.counts, "running": self.loops.healthy(),
                "loops": self.loops.report()}


def _sync_timeout(sync_seconds: float) -> float:
    """How long one sync round may wait for its tenants' fleets."""
    return max(60.0, sync_seconds)
