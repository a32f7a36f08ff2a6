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

from actors.router import EntityRouter
from forma3d import logs
from forma3d.config import settings
from forma3d.db.pool import Pool, connect, create_pool
from forma3d.messaging.fleet import SyncFleet, WakeFleet

log = logging.getLogger(__name__)
FLEET_CLOCK_NAME = "forma3d-fleet-clock"
QUEUE_CHANNEL = "forma3d_queue"

SMART_TENANTS = """SELECT tenant_id FROM integrations WHERE service = 'simplyprint' AND enabled
    AND coalesce(config->>'dispatch_mode', '') = 'smart'"""
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
                await asyncio.gather(*(router.deliver(SyncFleet(tenant_id=uuid.UUID(t))
                                                      .envelope(), max(60.0, self.sync_seconds))
                                       for t in ts), return_exceptions=True)
                self.counts["syncs"] += 1
            await asyncio.sleep(self.sync_seconds)

    async def _wake_loop(self, pool: Pool, router: EntityRouter) -> None:
        """Woken by NOTIFY (payload: tenant id), and every `wake_seconds` for every smart
        tenant with queued work anyway."""
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
            await router.deliver(WakeFleet(tenant_id=uuid.UUID(tenant)).envelope(), 300.0)
        except Exception as error:  # the next round wakes it again
            log.debug("fleet.wake for %s failed: %s", tenant, error)
        finally:
            inflight.discard(tenant)

    async def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), **self.counts,
                "running": bool(self.tasks) and not any(t.done() for t in self.tasks)}
