"""Scheduler: the cluster's clock for periodic entity work (farm and parcel reconciliation, Shopify
backfill, stock replenishment).

Ticks `ask` and wait, so a slow tenant delays its own next tick instead of piling up messages.
Time-of-day rules (the replenishment's quiet hours) judge the round's `at`, read from the
scheduler's clock: the wall clock in production, the sandbox's simulated clock in tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ray

from actors.loops import Body, Heartbeat, Lazy, Loop, Loops
from actors.router import EntityRouter
from forma3d import logs
from forma3d.config import settings
from forma3d.db.pool import Pool, create_pool
from forma3d.messaging.stock import ReplenishStock
from forma3d.messaging.tenant import (
    BackfillOrders,
    ReconcileFarm,
    ReconcileShipments,
    TenantMessage,
)

log = logging.getLogger(__name__)
SCHEDULER_NAME = "forma3d-scheduler"
STALE_MARGIN_SECONDS = 30.0  # beyond a round's own timeout before the loop counts as stuck

ACTIVE_FARM_TENANTS = """SELECT DISTINCT tenant_id FROM print_jobs
    WHERE status IN ('QUEUED', 'PRINTING') AND farm_queue_item_id IS NOT NULL"""
OPEN_PARCEL_TENANTS = """SELECT DISTINCT tenant_id FROM shipments
    WHERE parcel_id IS NOT NULL
      AND status IN ('LABEL_CREATED', 'ANNOUNCED', 'IN_TRANSIT', 'EXCEPTION', 'CANCEL_REQUESTED')"""
SHOPIFY_TENANTS = "SELECT tenant_id FROM integrations WHERE service = 'shopify' AND enabled"
STOCK_TENANTS = """SELECT id AS tenant_id FROM tenants
    WHERE coalesce((settings ->> 'stock_management_enabled')::boolean, false)"""
# Each tick checks the tenant's quiet hours itself, so a few minutes' lateness is all it costs.
REPLENISH_SECONDS = 300.0

Clock = Callable[[], Awaitable[datetime]]
"""What "now" is for a round (aware). Async, so a clock may live in another process (a test's
simulated clock behind its control API); it must pickle, as it travels to the actor."""


async def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """One periodic message: which tenants get it, how often, and whether it carries the
    round's time (`at`, for rules that depend on the time of day)."""

    sql: str
    seconds: float
    timed: bool = False


async def tick(pool: Pool, router: EntityRouter, sql: str, message: type[TenantMessage],
               timeout: float, at: datetime | None = None) -> int:
    """Ask every tenant the query names to handle `message` (with `at`, for a timed message);
    returns how many were asked."""
    tenants: list[uuid.UUID] = [r["tenant_id"] for r in await pool.fetch(sql)]
    stamp = {} if at is None else {"at": at}
    replies = await asyncio.gather(
        *(router.call(message(tenant_id=t, **stamp), timeout) for t in tenants),
        return_exceptions=True)
    for tenant, reply in zip(tenants, replies, strict=True):
        if isinstance(reply, BaseException):
            log.warning("%s for tenant %s failed: %s", message.type, tenant, reply)
    return len(tenants)


@ray.remote(num_cpus=0)
class Scheduler:
    """One loop per periodic message; the loops start in the constructor, so a restart (Ray
    re-runs it, with the same arguments) resumes them."""

    def __init__(self, database_url: str, host_count: int, reconcile_seconds: float,
                 backfill_seconds: float, replenish_seconds: float = REPLENISH_SECONDS,
                 clock: Clock = wall_clock) -> None:
        logs.configure(settings().log_level)
        self.database_url = database_url
        self.host_count = host_count
        self.clock = clock
        self.periods: dict[type[TenantMessage], Period] = {
            ReconcileFarm: Period(ACTIVE_FARM_TENANTS, reconcile_seconds),
            # Lost Sendcloud webhooks: open parcels are read back as often as the farm is.
            ReconcileShipments: Period(OPEN_PARCEL_TENANTS, reconcile_seconds),
            BackfillOrders: Period(SHOPIFY_TENANTS, backfill_seconds),
            ReplenishStock: Period(STOCK_TENANTS, replenish_seconds, timed=True)}
        self.ticks = {message.type: 0 for message in self.periods}
        self.connected = Lazy(self._connect)
        self.loops = Loops("scheduler", [
            Loop(message.type, self._every(message),
                 stale_after=_timeout(period.seconds) + STALE_MARGIN_SECONDS)
            for message, period in self.periods.items()])
        self.loops.ensure_started()

    async def _connect(self) -> tuple[Pool, EntityRouter]:
        router = EntityRouter.connect(self.host_count)  # first: it does no I/O to undo
        return await create_pool(self.database_url, max_size=2), router

    def _every(self, message: type[TenantMessage]) -> Body:
        period = self.periods[message]

        async def every(heartbeat: Heartbeat) -> None:
            pool, router = await self.connected.get()
            while True:
                await heartbeat.sleep(period.seconds)
                try:
                    at = await self.clock() if period.timed else None
                    await tick(pool, router, period.sql, message,
                               timeout=_timeout(period.seconds), at=at)
                    self.ticks[message.type] += 1
                except Exception:
                    log.exception("%s round failed; next round in %.0f s", message.type,
                                  period.seconds)

        return every

    async def start(self) -> bool:
        """Idempotent: the loops already run; starts any that never did."""
        self.loops.ensure_started()
        return True

    async def status(self) -> dict[str, Any]:
        self.loops.ensure_started()
        return {"pid": os.getpid(), "ticks": dict(self.ticks),
                "running": self.loops.healthy(), "loops": self.loops.report()}


def _timeout(period: float) -> float:
    """How long one round may wait for its tenants' answers."""
    return max(30.0, period)
