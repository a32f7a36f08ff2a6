"""Start, find and stop the entity runtime on a Ray cluster: the hosts and the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from typing import Any

import ray

from actors.fleet_clock import FLEET_CLOCK_NAME, FleetClock
from actors.host import EntityHost
from actors.outbox import DISPATCHER_NAME, OutboxDispatcher
from actors.router import NAMESPACE, EntityRouter, host_name
from actors.scheduler import SCHEDULER_NAME, Scheduler


@dataclass
class Runtime:
    hosts: list[Any]
    dispatcher: Any
    router: EntityRouter

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
    hosts = [
        EntityHost.options(  # type: ignore[attr-defined]
            name=host_name(i), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            max_restarts=-1, max_task_retries=0, max_concurrency=10_000, runtime_env=runtime_env,
        ).remote(i, host_count, database_url, idle_seconds)
        for i in range(host_count)
    ]
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
    ray.get([h.status.remote() for h in hosts])
    ray.get([dispatcher.start.remote(), scheduler.start.remote(), fleet_clock.start.remote()])
    return Runtime(hosts, dispatcher, EntityRouter(hosts, ask_timeout))


def connect_runtime(host_count: int, ask_timeout: float = 30.0) -> Runtime:
    """Attach to a runtime started elsewhere (e.g. from a Serve replica)."""
    router = EntityRouter.connect(host_count, ask_timeout)
    dispatcher = ray.get_actor(DISPATCHER_NAME, namespace=NAMESPACE)
    return Runtime(router.hosts, dispatcher, router)


def stop_runtime(host_count: int) -> None:
    """Kill the named actors this runtime created (detached actors outlive their creator)."""
    for name in [*(host_name(i) for i in range(host_count)), DISPATCHER_NAME, SCHEDULER_NAME,
                 FLEET_CLOCK_NAME]:
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
