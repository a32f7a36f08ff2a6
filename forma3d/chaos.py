"""Faults for `forma3d demo --chaos`: kill the runtime's processes and restart the embedded
servers while orders flow, at seeded random moments, and say what was done when.

Each fault is what a cluster admin would see go wrong: an entity host, the outbox dispatcher or
the scheduler dies (Ray restarts it: they are detached actors with unlimited restarts), a Serve
replica dies (Serve's controller starts another), the embedded PostgreSQL or Redis stops and
starts again after a few seconds down. The demo owns the stack it injects faults into, so the
faults never reach anyone else's processes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from forma3d.stack import Stack

FAULTS = ("entity_host", "outbox_dispatcher", "scheduler", "serve_replica", "postgres", "redis")
SERVE_APP = "forma3d"


@dataclass(frozen=True)
class Planned:
    fault: str
    at_s: float  # seconds after the first order was sent


@dataclass
class Injected:
    fault: str
    planned_s: float
    at_s: float
    took_s: float
    detail: str
    orders_done: int  # orders already terminal when the fault hit
    error: str | None = None


def plan(seed: int, window_s: float, faults: tuple[str, ...] = FAULTS) -> list[Planned]:
    """Every fault once, at a seeded random moment in (0.5 s, window_s), in time order."""
    rng = random.Random(f"chaos:{seed}")
    times = sorted(rng.uniform(0.5, max(1.0, window_s)) for _ in faults)
    names = list(faults)
    rng.shuffle(names)
    return [Planned(name, round(at, 2)) for name, at in zip(names, times, strict=True)]


def window_for(orders: int) -> float:
    """Where the faults fall: within the first part of a run of `orders`, while orders are in
    every stage (a run of 50 orders took about 70 s on the shared dev machine, BENCHMARKS.md;
    15 orders with faults took 85 s)."""
    return min(90.0, max(15.0, orders * 0.9))


class Chaos:
    """Injects the planned faults into a stack started in this process."""

    def __init__(self, stack: Stack, seed: int, planned: list[Planned]) -> None:
        self.stack = stack
        self.rng = random.Random(f"chaos-targets:{seed}")
        self.planned = planned
        self.injected: list[Injected] = []
        self._task: asyncio.Task[list[Injected]] | None = None

    def start(self, started: float, done: Callable[[], Awaitable[int]]) -> None:
        """Inject the faults from a task on the running loop."""
        self._task = asyncio.create_task(self.run(started, done))

    async def finish(self) -> list[Injected]:
        """Wait until every planned fault was injected."""
        return await self._task if self._task is not None else self.injected

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self, started: float, done: Callable[[], Awaitable[int]]) -> list[Injected]:
        """Inject each fault at its moment (`started` is time.monotonic() of the first order;
        `done()` counts the orders already terminal, for the report)."""
        for planned in self.planned:
            wait = started + planned.at_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            finished = await done()
            at = time.monotonic()
            try:
                detail = await asyncio.to_thread(self.inject, planned.fault)
                error = None
            except Exception as failure:  # reported: a fault that could not be injected
                detail, error = "", f"{type(failure).__name__}: {failure}"
            self.injected.append(Injected(planned.fault, planned.at_s, round(at - started, 2),
                                          round(time.monotonic() - at, 2), detail, finished,
                                          error))
        return self.injected

    def report(self) -> list[dict[str, Any]]:
        return [asdict(i) for i in self.injected]

    # --- the faults (blocking; run in a thread) ---------------------------------------------

    def inject(self, fault: str) -> str:
        if fault == "entity_host":
            from actors.router import host_name

            index = self.rng.randrange(max(1, self.stack.host_count))
            return self._kill_named(host_name(index), f"entity host {index}")
        if fault == "outbox_dispatcher":
            from actors.outbox import DISPATCHER_NAME

            return self._kill_named(DISPATCHER_NAME, "outbox dispatcher")
        if fault == "scheduler":
            from actors.scheduler import SCHEDULER_NAME

            return self._kill_named(SCHEDULER_NAME, "scheduler")
        if fault == "serve_replica":
            return self._kill_replica()
        if fault == "postgres":
            return self._restart_postgres()
        if fault == "redis":
            return self._restart_redis()
        raise ValueError(f"no fault {fault!r}; known: {FAULTS}")

    def _kill_named(self, name: str, what: str) -> str:
        """Kill the actor's process; Ray restarts it (max_restarts=-1)."""
        import ray

        from actors.router import NAMESPACE

        actor = ray.get_actor(name, namespace=NAMESPACE)
        pid = _pid_of(actor)
        ray.kill(actor, no_restart=False)
        return f"killed {what} (pid {pid}); Ray restarts it"

    def _kill_replica(self) -> str:
        """Kill one replica of the API deployment; Serve's controller replaces it."""
        import ray
        from ray._private import state

        replicas = [info for info in state.actors().values()
                    if str(info.get("ActorClassName", "")).startswith(f"ServeReplica:{SERVE_APP}")
                    and info.get("State") == "ALIVE" and info.get("Name")]
        if not replicas:
            raise RuntimeError("no live Serve replica found")
        chosen = self.rng.choice(sorted(replicas, key=lambda i: str(i["Name"])))
        actor = ray.get_actor(chosen["Name"], namespace=chosen.get("RayNamespace") or "serve")
        ray.kill(actor, no_restart=True)
        return (f"killed Serve replica {chosen['Name']} (pid {chosen.get('Pid')}); "
                "the Serve controller starts another")

    def _restart_postgres(self) -> str:
        return self._restart("PostgreSQL", "DATABASE_URL", self.stack.services.postgres,
                             self.stack.services.database_url)

    def _restart_redis(self) -> str:
        return self._restart("Redis", "REDIS_URL", self.stack.services.redis,
                             self.stack.services.redis_url)

    def _restart(self, name: str, variable: str, server: Any, url: str | None) -> str:
        """Stop an embedded server for 1-3 s and start it again at the same address."""
        if server is None:
            raise RuntimeError(f"{name} is not embedded ({variable} is set): not restarted")
        down = round(self.rng.uniform(1.0, 3.0), 1)
        server.stop()
        time.sleep(down)
        if server.start() != url:
            raise RuntimeError(f"{name} came back at another address")
        return f"stopped the embedded {name}, {down} s down, started it again"


def _pid_of(actor: Any) -> int | None:
    try:
        from ray._private import state

        info = state.actors(actor_id=actor._actor_id.hex())
        pid = info.get("Pid") if isinstance(info, dict) else None
        return int(pid) if pid else None
    except Exception:
        return None
