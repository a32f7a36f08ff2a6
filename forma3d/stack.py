"""`forma3d up`: PostgreSQL, Redis, migrations, Ray, the entity runtime and the Serve app.

Everything started here is stopped on Ctrl-C; data stays in the data directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from forma3d.config import Settings
from forma3d.db.migrate import migrate
from forma3d.platform.embedded import Services, start_services

log = logging.getLogger(__name__)


@dataclass
class Stack:
    settings: Settings
    services: Services
    host_count: int = 0
    started_ray: bool = False
    stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def urls(self) -> dict[str, str]:
        base = f"http://{self.settings.http_host}:{self.settings.http_port}"
        urls = {"api": f"{base}/api/v1", "docs": f"{base}/api/v1/openapi.json",
                "health": f"{base}/health/ready"}
        dashboard = _dashboard_url()
        if dashboard:
            urls["ray_dashboard"] = dashboard
        return urls

    def stop(self) -> None:
        for stop in reversed(self.stops):
            try:
                stop()
            except Exception:
                log.exception("error while stopping")
        self.stops.clear()


def _dashboard_url() -> str | None:
    import ray

    context = ray.get_runtime_context() if ray.is_initialized() else None
    if context is None:
        return None
    url = context.dashboard_url if hasattr(context, "dashboard_url") else None
    if not url:
        from ray._private.worker import get_dashboard_url

        url = get_dashboard_url()  # type: ignore[no-untyped-call]
    return f"http://{url}" if url else None


def start_stack(settings: Settings, *, dashboard: bool = True) -> Stack:
    """Start every part not already provided by the environment; returns the running stack."""
    import ray
    from ray import serve

    from actors.runtime import start_runtime, stop_runtime

    services = start_services(settings.database_url, settings.redis_url, settings.data_dir)
    stack = Stack(settings, services)
    stack.stops.append(services.stop)
    try:
        asyncio.run(migrate(services.database_url))
        env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url}
        os.environ.update(env)
        if not ray.is_initialized():
            ray.init(address=settings.ray_address, namespace="forma3d",
                     include_dashboard=dashboard, dashboard_host="127.0.0.1",
                     runtime_env={"env_vars": env}, log_to_driver=False)
            stack.started_ray = True
            stack.stops.append(ray.shutdown)
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        stack.host_count = settings.resolved_entity_hosts(cpus)
        start_runtime(services.database_url, stack.host_count,
                      idle_seconds=settings.entity_idle_seconds,
                      batch_size=settings.outbox_batch_size,
                      ask_timeout=settings.ask_timeout_seconds)
        stack.stops.append(lambda: stop_runtime(stack.host_count))
        os.environ["FORMA3D_ENTITY_HOSTS"] = str(stack.host_count)
        env["FORMA3D_ENTITY_HOSTS"] = str(stack.host_count)

        from forma3d.serving import application

        serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
        stack.stops.append(serve.shutdown)
        serve.run(application(settings.serve_replicas, env), name="forma3d", route_prefix="/",
                  blocking=False)
    except BaseException:
        stack.stop()
        raise
    return stack


def run_until_interrupted(stack: Stack) -> None:
    """Block until SIGINT/SIGTERM, then stop everything that was started."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    print("forma3d: stopping ...", flush=True)
    stack.stop()
    print("forma3d: stopped", flush=True)
