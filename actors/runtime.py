"""Start, find and stop the entity runtime on a Ray cluster: the hosts and the singletons
(outbox dispatcher, scheduler, fleet clock, slicer pool), and report how their loops tick."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import ray

from actors.fleet_clock import FLEET_CLOCK_NAME, FleetClock
from actors.host import EntityHost
from actors.outbox import DISPATCHER_NAME, OutboxDispatcher
from actors.router import NAMESPACE, EntityRouter, host_name
from actors.scheduler import SCHEDULER_NAME, Scheduler
from actors.slicer_pool import POOL_NAME, get_pool

# The singletons whose loops /health/ready reports, by the name it reports them under.
SINGLETONS = {"outbox_dispatcher": DISPATCHER_NAME, "scheduler": SCHEDULER_NAME,
              "fleet_clock": FLEET_CLOCK_NAME, "slicer_pool": POOL_NAME}


def _actor_state(actor: Any) -> str | None:
    """The actor's state in Ray's control store (ALIVE, RESTARTING, DEAD, ...), or None when it
    cannot be read. A call to a restarting actor waits for it; the control store says so now."""
    try:
        from ray._private import state

        info = state.actors(actor_id=actor._actor_id.hex())
    except Exception:
        return None
    found = info.get("State") if isinstance(info, dict) else None
    return str(found) if found is not None else None


@dataclass
class Runtime:
    hosts: list[Any]
    dispatcher: Any
    router: EntityRouter
    singletons: dict[str, Any | None] = field(default_factory=dict)  # SINGLETONS' handles
    last_loops: dict[str, dict[str, Any]] = field(default_factory=dict)  # last seen per actor

    async def loops(self, timeout: float = 3.0) -> dict[str, dict[str, Any]]:
        """Each singleton's loops as its watchdog reports them: `up` when the actor answered
        and every loop ticks; `down` (with the last ticks seen) when the actor is restarting,
        unreachable or a loop of it is down, starting or stuck."""

        def last_seen(name: str) -> dict[str, Any]:
            """The last ticks seen of an actor that does not answer now: its loops are down."""
            return {n: {"state": "down", "last_tick": loop.get("last_tick"),
                        "restarts": loop.get("restarts")}
                    for n, loop in self.last_loops.get(name, {}).items()}

        async def one(name: str, actor: Any | None) -> dict[str, Any]:
            if actor is None:
                return {"status": "down", "error": "actor not found"}
            state = await asyncio.to_thread(_actor_state, actor)
            if state not in (None, "ALIVE"):
                return {"status": "down", "error": f"actor {state}", "loops": last_seen(name)}
            try:
                status = await asyncio.wait_for(actor.status.remote(), timeout)
            except Exception as error:
                return {"status": "down", "error": f"status: {type(error).__name__}",
                        "loops": last_seen(name)}
            loops: dict[str, Any] = status.get("loops", {})
            self.last_loops[name] = loops
            sick = sorted(n for n, loop in loops.items() if loop["state"] != "up")
            return {"status": "down" if sick else "up", "pid": status.get("pid"),
                    "loops": loops, **({"error": f"loops not ticking: {sick}"} if sick else {})}

        names = list(self.singletons)
        results = await asyncio.gather(*(one(n, self.singletons[n]) for n in names))
        return dict(zip(names, results, strict=True))

    async def status(self, timeout: float = 5.0) -> dict[str, Any]:
        """Each host's and the dispatcher's status, or the error reaching it."""

        async def one(actor: Any) -> dict[str, Any]:
            try:
                result: dict[str, Any] = await asyncio.wait_for(actor.status.remote(), timeout)
                return {"status": "up", **result}
            except Exception as error:
                return {"status": "down", "error": type(error).__name__}

        results = await asyncio.gather(*(one(a) for a in [*self.hosts, self.dispatcher]))
        return {"hosts": results[:-1], "dispatcher": results[-1]}


def start_runtime(database_url: str, host_count: int, *, idle_seconds: float = 600.0,
                  batch_size: int = 200, ask_timeout: float = 30.0,
                  reconcile_seconds: float = 30.0, backfill_seconds: float = 300.0,
                  fleet_sync_seconds: float = 30.0, fleet_wake_seconds: float = 5.0,
                  env: dict[str, str] | None = None) -> Runtime:
    """Create (or find) the named, detached, restartable hosts, dispatcher and schedulers."""
    # The host count (settings().entity_hosts) and the tenants' live channels.
    env_vars = {"FORMA3D_ENTITY_HOSTS": str(host_count), **(env or {})}
    if os.environ.get("REDIS_URL"):
        env_vars.setdefault("REDIS_URL", os.environ["REDIS_URL"])
    runtime_env = {"env_vars": env_vars}
    # Placement rule: host i goes to the i-th alive node (nodes in node-id order, round robin),
    # a soft affinity, so hosts spread evenly over the nodes a cluster has when they start; a
    # host whose node is lost is restarted by Ray on a surviving node, and the rendezvous hash
    # keeps every entity on its host (docs/architecture.md, "Placement").
    nodes = sorted(n["NodeID"] for n in ray.nodes() if n.get("Alive"))  # type: ignore[no-untyped-call]
    hosts = [
        EntityHost.options(  # type: ignore[attr-defined]
            name=host_name(i), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=0, max_concurrency=10_000, runtime_env=runtime_env,
            scheduling_strategy=host_placement(i, nodes), memory=PLACEMENT_MEMORY,
        ).remote(i, host_count, database_url, idle_seconds)
        for i in range(host_count)
    ]
    # Every singleton starts its loops in its constructor (and so again after any restart).
    dispatcher = OutboxDispatcher.options(  # type: ignore[attr-defined]
        name=DISPATCHER_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=-1, max_task_retries=-1, max_concurrency=100, runtime_env=runtime_env,
    ).remote(database_url, host_count, batch_size)
    scheduler = Scheduler.options(  # type: ignore[attr-defined]
        name=SCHEDULER_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=-1, max_task_retries=-1, runtime_env=runtime_env,
    ).remote(database_url, host_count, reconcile_seconds, backfill_seconds)
    fleet_clock = FleetClock.options(  # type: ignore[attr-defined]
        name=FLEET_CLOCK_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=-1, max_task_retries=-1, runtime_env=runtime_env,
    ).remote(database_url, host_count, fleet_sync_seconds, fleet_wake_seconds)
    slicer_pool = get_pool()
    ray.get([h.status.remote() for h in hosts])
    ray.get([dispatcher.start.remote(), scheduler.start.remote(), fleet_clock.start.remote(),
             slicer_pool.status.remote()])
    singletons = {"outbox_dispatcher": dispatcher, "scheduler": scheduler,
                  "fleet_clock": fleet_clock, "slicer_pool": slicer_pool}
    return Runtime(hosts, dispatcher, EntityRouter(hosts, ask_timeout), singletons)


PLACEMENT_MEMORY = 2**20
"""A nominal 1 MiB each host asks for: Ray puts an actor that asks for no resource at all on a
random node and ignores a soft node affinity, so without it the hosts landed anywhere (all four
on one node in a CI run of tests/cluster)."""


def host_placement(index: int, nodes: list[str]) -> Any:
    """Host `index` on node `index mod len(nodes)`, softly: anywhere when that node is gone."""
    if len(nodes) < 2:
        return "DEFAULT"
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=nodes[index % len(nodes)], soft=True)


def connect_runtime(host_count: int, ask_timeout: float = 30.0) -> Runtime:
    """Attach to a runtime started elsewhere (e.g. from a Serve replica)."""
    router = EntityRouter.connect(host_count, ask_timeout)
    dispatcher = ray.get_actor(DISPATCHER_NAME, namespace=NAMESPACE)
    singletons: dict[str, Any | None] = {}
    for key, name in SINGLETONS.items():
        try:
            singletons[key] = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # reported down by `loops` until it exists
            singletons[key] = None
    return Runtime(router.hosts, dispatcher, router, singletons)


def stop_runtime(host_count: int) -> None:
    """Kill the named actors this runtime created (detached actors outlive their creator)."""
    for name in [*(host_name(i) for i in range(host_count)), *SINGLETONS.values()]:
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
