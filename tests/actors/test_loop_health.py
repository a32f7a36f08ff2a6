"""The loops on the real runtime: `/health/ready` turns 503 for a loop whose tick went stale and
200 once it ticks again; a real loop whose task dies (its LISTEN connection cut by PostgreSQL)
is restarted by its actor's watchdog and keeps working."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import ray
import redis.asyncio as aioredis

from actors.loops import Heartbeat, Loop, Loops
from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.messaging.tenant import BackfillOrders
from forma3d.store.outbox import send
from forma3d.store.tenants import create_tenant

pytestmark = pytest.mark.ray


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


@ray.remote(num_cpus=0)
class Pulse:
    """A singleton with one loop that ticks unless paused: a stand-in for a loop stuck in a
    call that never returns."""

    def __init__(self) -> None:
        self.ticking = asyncio.Event()
        self.ticking.set()
        self.loops = Loops("pulse", [Loop("pulse", self._pulse, stale_after=1.0)],
                           check_seconds=0.1)
        self.loops.ensure_started()

    async def _pulse(self, heartbeat: Heartbeat) -> None:
        while True:
            await self.ticking.wait()
            heartbeat.beat()
            await asyncio.sleep(0.05)

    async def pause(self, paused: bool) -> None:
        if paused:
            self.ticking.clear()
        else:
            self.ticking.set()

    async def status(self) -> dict[str, Any]:
        self.loops.ensure_started()
        return {"loops": self.loops.report()}


@pytest.fixture
async def api(db_pool: Pool, redis_url: str, ray_runtime: Runtime
              ) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    pulse = Pulse.remote()  # type: ignore[attr-defined]
    runtime = dataclasses.replace(ray_runtime, singletons={**ray_runtime.singletons,
                                                           "pulse": pulse}, last_loops={})
    redis = aioredis.from_url(redis_url)
    app = build_app(Deps(db_pool, redis, runtime))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://forma3d.test") as client:
        yield client, pulse
    await redis.aclose()
    ray.kill(pulse)


async def test_ready_is_503_while_a_loop_is_stuck_and_200_when_it_ticks_again(
        api: tuple[httpx.AsyncClient, Any]) -> None:
    client, pulse = api

    async def ready_is(code: int) -> bool:
        return (await client.get("/health/ready")).status_code == code

    await until(lambda: ready_is(200))
    body = (await client.get("/health/ready")).json()
    actors = body["checks"]["loops"]["actors"]
    assert set(actors) == {"outbox_dispatcher", "scheduler", "fleet_clock", "slicer_pool",
                           "pulse"}
    assert set(actors["outbox_dispatcher"]["loops"]) == {"dispatch", "relay", "webhooks",
                                                         "metrics"}
    assert set(actors["scheduler"]["loops"]) == {"tenant.reconcile", "tenant.backfill",
                                                 "stock.replenish",
                                                 "tenant.reconcile_shipments"}
    assert set(actors["fleet_clock"]["loops"]) == {"wake", "sync"}
    assert set(actors["slicer_pool"]["loops"]) == {"progress"}
    for actor in actors.values():
        assert actor["status"] == "up"
        for loop in actor["loops"].values():
            assert loop["state"] == "up" and loop["last_tick"] is not None

    await pulse.pause.remote(True)
    await until(lambda: ready_is(503))
    body = (await client.get("/health/ready")).json()
    assert body["status"] == "not_ready"
    assert body["checks"]["loops"]["status"] == "down"
    assert "pulse" in body["checks"]["loops"]["error"]
    assert body["checks"]["loops"]["actors"]["pulse"]["loops"]["pulse"]["state"] == "stuck"
    assert body["checks"]["loops"]["actors"]["outbox_dispatcher"]["status"] == "up"

    await pulse.pause.remote(False)
    await until(lambda: ready_is(200))


async def _restarts(actor: Any, loop: str) -> int:
    restarts: int = (await actor.status.remote())["loops"][loop]["restarts"]
    return restarts


SLOW = pytest.mark.slow  # one loop in scripts/test, the others in scripts/test-slow (time budget)


@pytest.mark.parametrize(("singleton", "loop", "channel"), [
    pytest.param("outbox_dispatcher", "dispatch", "forma3d_outbox", marks=SLOW),
    pytest.param("outbox_dispatcher", "relay", "forma3d_events", marks=SLOW),
    pytest.param("outbox_dispatcher", "webhooks", "forma3d_webhooks", marks=SLOW),
    ("fleet_clock", "wake", "forma3d_queue"),
])
async def test_a_loop_whose_connection_is_cut_is_restarted(
        ray_runtime: Runtime, db_pool: Pool, singleton: str, loop: str, channel: str) -> None:
    actor = ray_runtime.singletons[singleton]
    before = await _restarts(actor, loop)
    pid = (await actor.status.remote())["pid"]
    cut = await db_pool.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND query = $1", f'LISTEN "{channel}"')
    assert cut >= 1

    async def restarted() -> bool:
        status = await actor.status.remote()
        return bool(status["loops"][loop]["restarts"] > before
                    and status["loops"][loop]["state"] == "up")

    await until(restarted)
    status = await actor.status.remote()
    assert status["pid"] == pid  # the loop healed inside its actor
    assert "ConnectionError" in (status["loops"][loop]["last_error"] or "")
    if loop == "dispatch":  # and it delivers again, woken by NOTIFY on its new connection
        tenant = await create_tenant(db_pool, f"heal-{uuid.uuid4().hex[:10]}")
        async with db_pool.acquire() as conn, conn.transaction():
            await send(conn, BackfillOrders(tenant_id=tenant))

        async def delivered() -> bool:
            return bool(await db_pool.fetchval(
                "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND done_at IS NOT NULL"
                " AND last_error IS NULL", tenant) == 1)

        await until(delivered)
