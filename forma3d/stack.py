"""`forma3d up`: PostgreSQL, Redis, migrations, Ray, the entity runtime, the Serve app and (in
sandbox mode) the Shopify/SimplyPrint/Sendcloud simulators wired to the default tenant.

Everything started here is stopped on Ctrl-C; data stays in the data directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from forma3d.config import Settings
from forma3d.db.migrations import migrate
from forma3d.platform.embedded import Services, start_services
from forma3d.platform.secrets import KEY_ENV, load_or_create_key
from sandbox.runner import SandboxThread

log = logging.getLogger(__name__)


@dataclass
class Stack:
    settings: Settings
    services: Services
    host_count: int = 0
    started_ray: bool = False
    sandbox: SandboxThread | None = None
    sandbox_note: str | None = None
    stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def api_base(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_port}"

    @property
    def urls(self) -> dict[str, str]:
        base = self.api_base
        urls = {"api": f"{base}/api/v1", "docs": f"{base}/api/v1/openapi.json",
                "health": f"{base}/health/ready"}
        dashboard = _dashboard_url()
        if dashboard:
            urls["ray_dashboard"] = dashboard
        if self.sandbox is not None:
            urls.update({f"sandbox_{name}": url for name, url in self.sandbox.urls.items()})
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


def start_stack(settings: Settings, *, dashboard: bool = True,
                sandbox_speedup: float = 60.0) -> Stack:
    """Start every part not already provided by the environment; returns the running stack."""
    import ray
    from ray import serve

    from actors.runtime import start_runtime, stop_runtime

    services = start_services(settings.database_url, settings.redis_url, settings.data_dir)
    stack = Stack(settings, services)
    stack.stops.append(services.stop)
    try:
        asyncio.run(migrate(services.database_url))
        # Every process that decrypts integration secrets (Serve replicas, entity hosts) needs
        # the key, so it goes into the environment before Ray starts any worker.
        env = {"DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
               KEY_ENV: settings.secret_key or load_or_create_key(settings.data_dir)}
        os.environ.update(env)
        if settings.sandbox:
            _start_sandbox(stack, sandbox_speedup)
        if stack.sandbox is not None and not settings.public_url:
            # The simulators reach this stack where it listens: connecting registers that.
            env["FORMA3D_PUBLIC_URL"] = os.environ["FORMA3D_PUBLIC_URL"] = stack.api_base
        if not ray.is_initialized():
            for name, value in serve_environment(settings).items():
                env[name] = os.environ.setdefault(name, value)
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
                      ask_timeout=settings.ask_timeout_seconds,
                      reconcile_seconds=settings.reconcile_seconds,
                      backfill_seconds=settings.backfill_seconds, env=env)
        stack.stops.append(lambda: stop_runtime(stack.host_count))
        os.environ["FORMA3D_ENTITY_HOSTS"] = str(stack.host_count)
        env["FORMA3D_ENTITY_HOSTS"] = str(stack.host_count)

        from forma3d.serving import application

        serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
        stack.stops.append(serve.shutdown)
        serve.run(application(settings.serve_replicas, env), name="forma3d", route_prefix="/",
                  blocking=False)
        if stack.sandbox is not None:
            _wire_sandbox(stack)
    except BaseException:
        stack.stop()
        raise
    return stack


def serve_environment(settings: Settings) -> dict[str, str]:
    """Serve's fast ingress, read by Ray's processes when they start: HAProxy in front of the
    replicas' own HTTP servers, in throughput-optimised mode (BENCHMARKS.md, "Webhook ingest").
    HAProxy's files and ports belong to this stack (named by its HTTP port), so stacks side by
    side on one machine never share its sockets; the directory is short because HAProxy refuses
    socket paths over 97 characters and Ray adds 41 of its own. A variable already set in the
    environment wins (RAY_SERVE_ENABLE_HA_PROXY=0 turns HAProxy off)."""
    base = Path(tempfile.gettempdir()) / f"forma3d-haproxy-{settings.http_port}"
    base.mkdir(parents=True, exist_ok=True)
    return {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
            # HAProxy's manager starts slower than Serve's proxy; on a loaded machine the
            # 5 s ready check killed it (twice in seven starts at load 30+).
            "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "30",
            "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30",
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(base / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(base / "admin.sock"),
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(base / "metrics.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(base),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(base / "server-state"),
            "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.http_port + 1404),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.http_port + 1101)}


def _start_sandbox(stack: Stack, speedup: float) -> None:
    """Start the simulators (the default tenant is connected to them once the API answers),
    unless the default tenant has real credentials."""
    from forma3d.db.pool import connect
    from forma3d.store.tenants import DEFAULT_TENANT_ID
    from sandbox.runner import has_real_credentials, stack_config

    async def real() -> bool:
        conn = await connect(stack.services.database_url)
        try:
            return await has_real_credentials(conn, DEFAULT_TENANT_ID)
        finally:
            await conn.close()

    if asyncio.run(real()):
        stack.sandbox_note = "default tenant has real credentials; sandbox not started"
        return
    # The simulators post their webhooks with httpx from this process: keep them out of the log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    config = stack_config(stack.settings.http_port, speedup=speedup)
    stack.sandbox = SandboxThread(config)
    stack.stops.append(stack.sandbox.stop)
    stack.sandbox.start()


def _wire_sandbox(stack: Stack, ready_seconds: float = 180.0) -> None:
    """Connect the default tenant to the simulators through the REST API (registering our
    webhooks at each, as for a real shop), once the API answers; seed the catalog once.

    The simulators keep their state in memory, so the tenant is re-connected on every start."""
    import httpx

    from forma3d.db.pool import connect
    from forma3d.store.tenants import DEFAULT_TENANT_ID
    from sandbox.runner import sandbox_key, wire_tenant, write_state

    assert stack.sandbox is not None
    deadline = time.monotonic() + ready_seconds
    while True:
        try:
            if httpx.get(f"{stack.api_base}/health/live", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not answer at {stack.api_base} in {ready_seconds}s")
        time.sleep(0.5)
    urls, config = stack.sandbox.urls, stack.sandbox.config

    async def wire() -> bool:
        conn = await connect(stack.services.database_url)
        try:
            key = await sandbox_key(conn, stack.settings.data_dir, DEFAULT_TENANT_ID)
            return await wire_tenant(conn, DEFAULT_TENANT_ID, urls, config, stack.api_base, key)
        finally:
            await conn.close()

    seeded = asyncio.run(wire())
    stack.sandbox_note = ("default tenant connected to the sandbox through the API"
                          + ("; catalog seeded" if seeded else ""))
    state = write_state(stack.settings.data_dir, stack.api_base, urls)
    stack.stops.append(lambda: state.unlink(missing_ok=True))


def run_until_interrupted(stack: Stack) -> None:
    """Block until SIGINT/SIGTERM, then stop everything that was started."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    print("forma3d: stopping ...", flush=True)
    stack.stop()
    print("forma3d: stopped", flush=True)
