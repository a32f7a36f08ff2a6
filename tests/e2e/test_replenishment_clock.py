"""The replenishment scheduler on the sandbox's simulated clock (Ray runtime, sandboxes on
loopback, the HTTP API): a scheduler actor whose clock is the sandbox's batches the products
below their minimum only once the simulated evening reaches the quiet hours, most urgent first;
killed mid-run (Ray restarts it) it makes no second batch; the batches print on the sandbox
farm, the shelf fills with one PRODUCED entry per batch, and each event appears once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import ray

from actors.router import NAMESPACE
from actors.runtime import Runtime
from actors.scheduler import Scheduler
from tests.e2e.conftest import Farm
from tests.polling import eventually

pytestmark = pytest.mark.ray
BENCHY, BIN, VASE, PLANTER = ("BENCHY-PLA-RED", "GRID-BIN-2X3-PETG-BLACK",
                              "VASE-SPIRAL-PLA-WHITE", "PLANTER-HEX-PLA-GREEN")
QUIET_START, QUIET_END = time(22), time(6)
TICK_SECONDS = 0.5  # the test scheduler's replenishment period (real seconds)
REPLENISH = "stock.replenish"


@dataclass(frozen=True)
class SandboxClock:
    """The sandbox's simulated now, read over its control API: the scheduler runs in a Ray
    actor, the clock in the test's process, and the test jumps it ahead."""

    url: str

    async def __call__(self) -> datetime:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/_sandbox/clock")
            response.raise_for_status()
            return datetime.fromisoformat(response.json()["now"])


def afternoon_zone() -> ZoneInfo:
    """A fixed-offset zone where the real clock reads early afternoon: the session's own
    scheduler (wall clock) stays 8 hours away from this tenant's quiet hours, so only the
    simulated evening can start them."""
    offset = 13 - datetime.now(ZoneInfo("UTC")).hour  # -10 .. +13, all of them Etc/GMT zones
    return ZoneInfo(f"Etc/GMT{-offset:+d}")


def quiet(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone).time()
    return local >= QUIET_START or local < QUIET_END


def next_local(moment: datetime, zone: ZoneInfo, at: time) -> datetime:
    """The first local `at` after `moment`."""
    local = moment.astimezone(zone)
    candidate = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > local else candidate + timedelta(days=1)


class Clock:
    """The farm's simulated clock through its control API."""

    def __init__(self, farm: Farm) -> None:
        self.url = farm.sandboxes.urls["simplyprint"]

    async def control(self, body: dict[str, float] | None = None) -> datetime:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await (client.post(f"{self.url}/_sandbox/clock", json=body) if body
                              else client.get(f"{self.url}/_sandbox/clock"))
            response.raise_for_status()
            return datetime.fromisoformat(response.json()["now"])

    async def now(self) -> datetime:
        return await self.control()

    async def jump_to(self, moment: datetime) -> datetime:
        return await self.control({"advance": max(0.0, (moment - await self.now())
                                                  .total_seconds())})


async def status(scheduler: Any) -> dict[str, Any] | None:
    """The scheduler's status, or None while Ray restarts it."""
    try:
        reply: dict[str, Any] = await scheduler.status.remote()
    except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
        return None
    return reply


async def ticks_after(scheduler: Any, rounds: int, *, pid: int | None = None) -> dict[str, Any]:
    """The scheduler's status once it has done `rounds` more replenishment rounds (of the
    process `pid`, when given: a restarted scheduler counts from zero)."""
    start = (await status(scheduler) or {}).get("ticks", {}).get(REPLENISH, 0)

    async def done() -> dict[str, Any] | None:
        now = await status(scheduler)
        if now is None or (pid is not None and now["pid"] != pid):
            return None
        return now if now["ticks"][REPLENISH] >= start + rounds else None

    reached = await eventually(done, timeout=120, interval=0.1,
                               what=f"{rounds} replenishment rounds")
    assert reached is not None
    return reached


async def batches(farm: Farm) -> list[dict[str, Any]]:
    """The tenant's stock batches in the order they were made (their IN_PROGRESS events)."""
    rows = await farm.pool.fetch(
        """SELECT b.id, m.sku, b.units, b.status, b.origin, b.units_produced
           FROM stock_batches b JOIN product_mappings m ON m.id = b.mapping_id
           JOIN event_log e ON e.tenant_id = b.tenant_id AND e.type = 'stock.batch-status-changed'
            AND e.data ->> 'stock_batch_id' = b.id::text AND e.data ->> 'previous_status' IS NULL
           WHERE b.tenant_id = $1 ORDER BY e.id""", farm.tenant_id)
    return [dict(r.items()) for r in rows]


async def events(farm: Farm, kind: str, key: str) -> list[str]:
    rows = await farm.pool.fetch(
        "SELECT data ->> $2 AS key FROM event_log WHERE tenant_id = $1 AND type = $3 ORDER BY id",
        farm.tenant_id, key, kind)
    return [r["key"] for r in rows]


async def test_replenishment_follows_the_simulated_night(farm: Farm, ingress: str,
                                                        database_url: str,
                                                        ray_runtime: Runtime) -> None:
    clock, zone = Clock(farm), afternoon_zone()
    # A simulated minute per real second until the prints, from noon (the farm's clock ran an
    # hour per real second since it started).
    await clock.control({"speedup": 60})
    await clock.jump_to(next_local(await clock.now(), zone, time(12)))
    await farm.control("simplyprint", "farm", {"auto_print": False})  # batches wait to print

    ids = {r["sku"]: r["id"] for r in await farm.pool.fetch(
        "SELECT id, sku FROM product_mappings WHERE tenant_id = $1", farm.tenant_id)}
    settings = await farm.api("PATCH", "/stock/settings", {
        "stock_management_enabled": True, "stock_time_zone": zone.key,
        "stock_quiet_start": "22:00", "stock_quiet_end": "06:00"})
    assert settings.status_code == 200, settings.text
    wanted = {  # minimum, maximum, priority, batch size
        BENCHY: (3, 5, 10, 3), BIN: (2, None, 5, 10), VASE: (1, 1, 0, 4), PLANTER: (1, 2, 50, 1)}
    for sku, (minimum, maximum, priority, batch_size) in wanted.items():
        patch = {"minimum": minimum, "priority": priority, "batch_size": batch_size}
        answer = await farm.api("PATCH", f"/stock/{ids[sku]}",
                                patch | ({"maximum": maximum} if maximum else {}))
        assert answer.status_code == 200, answer.text
    stocked = await farm.api("POST", f"/stock/{ids[PLANTER]}/adjustments",
                             {"quantity": 1, "reason": "opening count"})  # at its minimum
    assert stocked.status_code == 201, stocked.text

    scheduler = Scheduler.options(  # type: ignore[attr-defined]
        name=f"replenish-{uuid.uuid4().hex[:8]}", namespace=NAMESPACE, max_restarts=-1,
        max_task_retries=-1,
    ).remote(database_url, len(ray_runtime.hosts), 3600.0, 3600.0,
             replenish_seconds=TICK_SECONDS, clock=SandboxClock(clock.url))
    try:
        # The evening: products below their minimum, rounds on the clock, no batch.
        await ticks_after(scheduler, 1)
        evening = await clock.jump_to(next_local(await clock.now(), zone, time(20)))
        first = await ticks_after(scheduler, 3)
        assert not quiet(await clock.now(), zone), "the evening ran into the quiet hours"
        assert await batches(farm) == []

        # The quiet hours: one batch per batch size, highest priority first; PLANTER (at its
        # minimum) gets none.
        await clock.jump_to(next_local(evening, zone, time(22, 1)))
        await eventually(lambda: batches(farm), timeout=60, what="the night's batches")
        await ticks_after(scheduler, 3)
        made = await batches(farm)
        assert [(b["sku"], b["units"]) for b in made] == [
            (BENCHY, 3), (BENCHY, 2), (BIN, 2), (VASE, 1)]
        assert {b["origin"] for b in made} == {"REPLENISHMENT"}
        scheduled = await events(farm, "stock.replenishment-scheduled", "stock_batch_id")
        assert list(dict.fromkeys(scheduled)) == [str(b["id"]) for b in made]

        # Killed mid-run, the scheduler comes back (Ray re-runs its constructor with the same
        # clock) and goes on ticking in the same night while every batch waits to print.
        ray.kill(scheduler, no_restart=False)
        await eventually(lambda: _restarted(scheduler, first["pid"]), timeout=120,
                         what="the scheduler restarted")
        again = await ticks_after(scheduler, 3)
        assert quiet(await clock.now(), zone)
        assert again["pid"] != first["pid"]
        assert await batches(farm) == made  # no second batch, all still IN_PROGRESS
        assert {b["status"] for b in made} == {"IN_PROGRESS"}

        # The farm prints them (an hour of printing per real second): the shelf fills.
        await clock.control({"speedup": 3600})
        await farm.control("simplyprint", "farm", {"auto_print": True})

        async def settled() -> list[dict[str, Any]] | None:
            now = await batches(farm)
            return now if all(b["status"] != "IN_PROGRESS" for b in now) else None

        done = await eventually(settled, timeout=240, interval=0.3, what="batches settled")
        assert done is not None
        assert [(b["sku"], b["status"], b["units_produced"]) for b in done] == [
            (BENCHY, "COMPLETED", 3), (BENCHY, "COMPLETED", 2), (BIN, "COMPLETED", 2),
            (VASE, "COMPLETED", 1)]

        jobs = await farm.pool.fetch(
            "SELECT id, status, farm_job_uid FROM print_jobs WHERE tenant_id = $1",
            farm.tenant_id)
        assert len(jobs) == 3 + 2 + 2 + 2  # a vase is a vase and a base
        assert all(j["status"] == "COMPLETED" and j["farm_job_uid"] for j in jobs)
        async with httpx.AsyncClient(timeout=10) as client:
            on_farm = (await client.get(f"{clock.url}/_sandbox/jobs")).json()["jobs"]
        assert len(on_farm) == len(jobs)

        levels = {sku: (await farm.api("GET", f"/stock/{ids[sku]}")).json() for sku in wanted}
        assert {sku: (lv["on_hand"], lv["in_production"]) for sku, lv in levels.items()} == {
            BENCHY: (5, 0), BIN: (2, 0), VASE: (1, 0), PLANTER: (1, 0)}
        produced = await farm.pool.fetch(
            "SELECT stock_batch_id, quantity FROM stock_ledger WHERE tenant_id = $1"
            " AND entry_type = 'PRODUCED' ORDER BY id", farm.tenant_id)
        assert sorted((r["stock_batch_id"], r["quantity"]) for r in produced) == sorted(
            (b["id"], b["units"]) for b in made)

        # Each event once: one scheduled per stock job, one completion per batch.
        per_job = await events(farm, "stock.replenishment-scheduled", "print_job_id")
        assert sorted(per_job) == sorted(str(j["id"]) for j in jobs)
        completed = await events(farm, "stock.batch-completed", "stock_batch_id")
        assert sorted(completed) == sorted(str(b["id"]) for b in made)

        # The rest of the simulated day and into the next night: the shelf is full, so the
        # rounds make nothing more.
        await clock.control({"speedup": 60})
        next_noon = await clock.jump_to(next_local(await clock.now(), zone, time(12)))
        await ticks_after(scheduler, 3)
        assert not quiet(await clock.now(), zone)
        await clock.jump_to(next_local(next_noon, zone, time(22, 30)))
        await ticks_after(scheduler, 3)
        assert quiet(await clock.now(), zone)
        assert [b["id"] for b in await batches(farm)] == [b["id"] for b in made]
        assert await events(farm, "stock.batch-completed", "stock_batch_id") == completed
    finally:
        ray.kill(scheduler, no_restart=True)


async def _restarted(scheduler: Any, pid: int) -> bool:
    now = await status(scheduler)
    return now is not None and now["pid"] != pid
