"""Done when: a test SIGKILLs each background actor during a demo; every order completes, nothing
is doubled, and `/health/ready` answered 503 while a loop was down and 200 after it recovered.

The demo is `forma3d.demo.drive` against the e2e farm (our ingress and the sandboxes on
loopback); while it runs, the outbox dispatcher, the scheduler, the fleet clock and the slicer
pool are killed one after the other, each once the stack is ready again after the previous one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from actors.runtime import SINGLETONS, Runtime
from forma3d.db.pool import Pool
from forma3d.demo import DemoOptions, Target, drive
from tests.e2e.conftest import SPEEDUP, Farm

pytestmark = pytest.mark.ray
ORDERS = 6  # one of each demo mix: single-part, multi-part, quantity > 1, mixed
POLL_SECONDS = 0.1


@dataclass
class Answer:
    number: int  # polls are numbered in the order they were sent
    status: int
    body: dict[str, Any]


@dataclass
class ReadinessWatch:
    """Polls /health/ready every POLL_SECONDS, each poll on its own (a slow answer does not
    delay the next poll), and keeps every answer."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    sent: int = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            polls: set[asyncio.Task[None]] = set()
            try:
                while True:
                    task = asyncio.create_task(self._poll(client, self.sent))
                    polls.add(task)
                    task.add_done_callback(polls.discard)
                    self.sent += 1
                    await asyncio.sleep(POLL_SECONDS)
            finally:
                for task in list(polls):
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

    async def _poll(self, client: httpx.AsyncClient, number: int) -> None:
        response = await client.get(f"{self.url}/health/ready")
        self.answers.append(Answer(number, response.status_code, response.json()))

    def down(self, actor: str, after: int) -> Answer | None:
        """The first 503 sent after poll `after` that names `actor` down."""
        return next((a for a in sorted(self.answers, key=lambda a: a.number)
                     if a.number >= after and a.status == 503
                     and a.body["checks"]["loops"]["actors"][actor]["status"] == "down"), None)

    def ready(self, after: int) -> Answer | None:
        return next((a for a in sorted(self.answers, key=lambda a: a.number)
                     if a.number > after and a.status == 200), None)


async def until(predicate: Any, what: str, timeout: float = 90.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (found := predicate()) is None:
        if loop.time() > deadline:
            raise AssertionError(f"{what} not seen in {timeout:.0f}s")
        await asyncio.sleep(0.05)
    return found


async def test_sigkill_each_background_actor_during_a_demo(
        farm: Farm, ingress: str, database_url: str, db_pool: Pool,
        ray_runtime: Runtime) -> None:
    watch = ReadinessWatch(ingress)
    watcher = asyncio.create_task(watch.run())
    await until(lambda: watch.ready(-1), "a ready stack")
    target = Target(ingress, database_url, farm.sandboxes.urls, farm.tenant_id)
    demo = asyncio.create_task(drive(
        target, DemoOptions(orders=ORDERS, timeout=240, speedup=SPEEDUP), show_progress=False))

    async def orders_received() -> int:
        count: int = await db_pool.fetchval(
            "SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1", farm.tenant_id)
        return count

    # The first kill lands while webhooks are still arriving: their orders wait on the outbox.
    while await orders_received() == 0:
        assert not demo.done(), demo
        await asyncio.sleep(0.05)
    recovered: dict[str, tuple[Answer, Answer]] = {}
    try:
        for name in SINGLETONS:
            actor = ray_runtime.singletons[name]
            pid = (await actor.status.remote())["pid"]
            mark = watch.sent
            os.kill(pid, signal.SIGKILL)
            down = await until(lambda n=name, m=mark: watch.down(n, m), f"{name} down (503)")
            up = await until(lambda d=down: watch.ready(d.number), f"ready after {name}")
            assert (await actor.status.remote())["pid"] != pid, f"{name} was restarted"
            recovered[name] = (down, up)
        report = await asyncio.wait_for(demo, 300)
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        demo.cancel()

    for name, (down, up) in recovered.items():
        assert down.body["status"] == "not_ready"
        assert "error" in down.body["checks"]["loops"]["actors"][name]
        loops = up.body["checks"]["loops"]["actors"][name]["loops"]
        assert loops and all(loop["state"] == "up" and loop["last_tick"] for loop in
                             loops.values()), loops
    print(f"heartbeat demo: {report['elapsed_s']} s; down/up polls: "
          f"{ {n: (d.number, u.number) for n, (d, u) in recovered.items()} }")
    assert not report["timed_out"], report.get("diagnostics")
    assert report["orders"] == report["fulfilled"] == ORDERS, report
    assert report["duplicate_print_jobs"] == 0  # per job key, and farm queue items per attempt
    assert report["print_jobs"] == report["print_jobs_completed"] > ORDERS
    assert report["shipments"] == ORDERS
    assert len(farm.sandboxes.sandboxes.sendcloud.parcels) == ORDERS  # one parcel per order
    assert report["shopify_fulfillments"] == report["shopify_fulfilled_orders"] == ORDERS
