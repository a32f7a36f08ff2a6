"""The Ray Serve deployment around the Starlette app (built on each replica)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from ray import serve

from forma3d.config import settings
from forma3d.http.app import build_app

# The app is async end to end, so one replica serves many requests at once. Serve's default of 5
# in flight made its router back off (up to 1 s) under webhook bursts: measured 6.7 accepted/s at
# 64 concurrent senders, against 124/s at 4 (benchmarks/webhooks.py).
MAX_ONGOING_REQUESTS = 256
# Past this many waiting, answer 503 at once: Shopify and Sendcloud retry, and nothing is lost.
MAX_QUEUED_REQUESTS = 2048


@serve.deployment(name="forma3d-api", ray_actor_options={"num_cpus": 0},
                  max_ongoing_requests=MAX_ONGOING_REQUESTS,
                  max_queued_requests=MAX_QUEUED_REQUESTS)
@serve.ingress(build_app)
class Api:
    """Ingress deployment: requests go to the Starlette app; each replica has its own pools."""

    def __init__(self) -> None:
        hot_path_priority()


def hot_path_priority() -> None:
    """Ray starts its workers at nice 15, and Linux keeps a nice value per thread: the replica
    answering webhooks takes the normal priority back, where the OS allows it, for every one of
    its threads (the event loop is not the thread this runs on), and so does this node's HAProxy
    of the stack with its manager (a reloaded HAProxy is the manager's child and inherits it).
    During a burst the entity hosts and the dispatcher (still at 15) create orders with what the
    hot path leaves, and catch up after it. HAProxy may start or reload after this replica, so
    it is looked for again a few times."""
    _renice(os.getpid())
    config = os.environ.get("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC")
    if config:
        # Ray puts the file one directory deeper (a session's), so the stack's directory is
        # what HAProxy's command line names.
        threading.Thread(target=_renice_haproxy, args=(f"{Path(config).parent}/",), daemon=True,
                         name="forma3d-haproxy-priority").start()


def _renice_haproxy(directory: str, after: tuple[float, ...] = (0, 5, 15, 60)) -> None:
    waited = 0.0
    for at in after:
        time.sleep(at - waited)
        waited = at
        for pid in _naming(directory):
            _renice(pid)
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{pid}/stat").read_text()
                _renice(int(stat.rsplit(")", 1)[1].split()[1]))  # its parent: the manager


def _naming(text: str) -> list[int]:
    """Processes whose command line contains `text` (HAProxy names its per-stack config)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _renice(pid: int) -> None:
    """Nice 0 for every thread of `pid` (a no-op where the OS refuses)."""
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                os.setpriority(os.PRIO_PROCESS, int(task.name), 0)


def application(replicas: int | None = 1, env: dict[str, str] | None = None,
                per_node: int | None = None) -> Any:
    """The ingress with `replicas` replicas (None: as the Serve config says, e.g. autoscaled),
    at most `per_node` on one node (spreads them over the nodes; None: no limit)."""
    options: dict[str, Any] = {"num_cpus": 0}
    if env:
        options["runtime_env"] = {"env_vars": env}
    counts: dict[str, Any] = {} if replicas is None else {"num_replicas": replicas}
    if per_node is not None:
        counts["max_replicas_per_node"] = per_node
    if not settings().serve_access_log:
        counts["logging_config"] = {"enable_access_log": False}
    return Api.options(  # type: ignore[attr-defined]
        ray_actor_options=options, **counts).bind()


FORWARDED_ENV = ("DATABASE_URL", "REDIS_URL", "FORMA3D_SECRET_KEY", "FORMA3D_PUBLIC_URL",
                 "FORMA3D_PLATFORM_KEY")
"""What the builder's process passes on to replicas and entity hosts it starts."""


def app_builder(args: dict[str, str]) -> Any:
    """The application `serve deploy deploy/serve.yaml` (and a KubeRay RayService) builds: the
    schema migrated, the entity runtime (named, detached hosts and singletons) found or started,
    then the ingress. Connection settings come from the environment every Ray node has
    (DATABASE_URL, REDIS_URL, FORMA3D_SECRET_KEY, FORMA3D_PUBLIC_URL, FORMA3D_PLATFORM_KEY);
    `args` (the config's `args`) may set
    `entity_hosts`, `replicas` (without it, the config's replicas or autoscaling) and
    `max_replicas_per_node`."""
    import asyncio

    import ray

    from actors.runtime import start_runtime
    from forma3d.db.migrations import migrate

    config = settings()
    if config.database_url is None:
        raise ValueError("DATABASE_URL must be set on every node of a cluster")
    asyncio.run(migrate(config.database_url))
    hosts = int(args.get("entity_hosts") or config.resolved_entity_hosts(
        ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    env = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    env["FORMA3D_ENTITY_HOSTS"] = str(hosts)
    start_runtime(config.database_url, hosts, idle_seconds=config.entity_idle_seconds,
                  batch_size=config.outbox_batch_size, ask_timeout=config.ask_timeout_seconds,
                  reconcile_seconds=config.reconcile_seconds,
                  backfill_seconds=config.backfill_seconds, env=env)
    replicas, per_node = args.get("replicas"), args.get("max_replicas_per_node")
    return application(int(replicas) if replicas else None, env,
                       int(per_node) if per_node else None)
