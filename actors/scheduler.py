"""Scheduler: the cluster's clock for periodic entity work (farm reconciliation, Shopify backfill,
stock replenishment).

Ticks `ask` and wait, so a slow tenant delays its own next tick instead of piling up messages.
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
from forma3d.db.pool import Pool, create_pool
from forma3d.messaging.stock import ReplenishStock
from forma3d.messaging.tenant import BackfillOrders, ReconcileFarm, TenantMessage

log = logging.getLogger(__name__)
SCHEDULER_NAME = "forma3d-scheduler"

ACTIVE_FARM_TENANTS = """SELECT DISTINCT tenant_id FROM print_jobs
    WHERE status IN ('QUEUED', 'PRINTING') AND farm_queue_item_id IS NOT NULL"""
SHOPIFY_TENANTS = "SELECT tenant_id FROM integrations WHERE service = 'shopify' AND enabled"
STOCK_TENANTS = """SELECT id AS tenant_id FROM tenants
    WHERE coalesce((settings ->> 'stock_management_enabled')::boolean, false)"""
# Each tick checks the tenant's quiet hours itself, so a few minutes' lateness is all it costs.
REPLENISH_SECONDS = 300.0


async def tick(pool: Pool, router: EntityRouter, sql: str, message: type[TenantMessage],
               timeout: float) -> int:
    """Ask every tenant the query names to handle `message`; returns how many were asked."""
    tenants: list[uuid.UUID] = [r["tenant_id"] for r in await pool.fetch(sql)]
    replies = await asyncio.gather(
        *(router.call(message(tenant_id=t), timeout) for t in tenants), return_exceptions=True)
    for tenant, reply in zip(tenants, replies, strict=True):
        if isinstance(reply, BaseException):
            log.warning("%s for tenant %s failed: %s", message.type, tenant, reply)
    return len(tenants)


@ray.remote(num_cpus=0)
class Scheduler:
    def __init__(self, database_url: str, host_count: int, reconcile_seconds: float,
                 backfill_seconds: float) -> None:
        logs.configure(settings().log_level)
        self.database_url = database_url
        self.host_count = host_count
        self.periods: dict[type[TenantMessage], tuple[str, float]] = {
            ReconcileFarm: (ACTIVE_FARM_TENANTS, reconcile_seconds),
            BackfillOrders: (SHOPIFY_TENANTS, backfill_seconds),
            ReplenishStock: (STOCK_TENANTS, REPLENISH_SECONDS)}
        self.tasks: list[asyncio.Task[None]] = []
        self.ticks = {message.type: 0 for message in self.periods}

    async def start(self) -> bool:
        if not self.tasks:
            pool = await create_pool(self.database_url, max_size=2)
            router = EntityRouter.connect(self.host_count)
            self.tasks = [asyncio.create_task(self._every(pool, router, message))
                          for message in self.periods]
        return True

    async def _every(self, pool: Pool, router: EntityRouter,
                     message: type[TenantMessage]) -> None:
        sql, period = self.periods[message]
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await tick(pool, router, sql, message, timeout=max(30.0, period))
                self.ticks[message.type] += 1

    async def status(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "ticks": dict(self.ticks),
                "running": bool(self.tasks) and not any(t.done() for t in self.tasks)}
