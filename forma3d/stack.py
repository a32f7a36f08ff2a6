"""`forma3d up`: PostgreSQL, Redis, migrations, Ray, the entity runtime, the Serve app and (in
sandbox mode) the Shopify/SimplyPrint/Sendcloud simulators wired to the default tenant.

Everything started here is stopped on Ctrl-C (or SIGTERM); data stays in the data directory.
The run is recorded in `<data dir>/up.json` (this process and every process it started, Ray's
included), so a start after a run that was killed (`kill -9`) stops what that run left behind,
takes over its embedded servers, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from forma3d.config import Settings
from forma3d.db.migrations import migrate
from forma3d.platform.embedded import Services, start_services
from forma3d.platform.ownership import (
    ProcessRef,
    descendants,
    read_extra,
    read_owner,
    session_members,
    terminate,
    write_owner,
)
from forma3d.platform.secrets import KEY_ENV, load_or_create_key
from sandbox.runner import SandboxThread

log = logging.getLogger(__name__)

RUN_FILE = "up.json"
# How long the orderly stop may take before what is left is killed (a second Ctrl-C: at once).
STOP_SECONDS = 90.0


class AlreadyRunning(RuntimeError):
    pass


def take_over_run(data_dir: Path) -> list[str]:
    """Stop what a run on this data directory left behind when it was killed; refuse to start
    beside a run that is still going. Returns what was found and done, for the user."""
    path = data_dir / RUN_FILE
    previous = read_owner(path)
    if previous is None:
        return []
    if previous.pid != os.getpid() and previous.alive():
        raise AlreadyRunning(f"forma3d up is already running on {data_dir} (pid {previous.pid});"
                             " stop it first, or give another FORMA3D_DATA_DIR")
    recorded = read_extra(path).get("processes", [])
    left: dict[int, psutil.Process] = {}
    for entry in recorded if isinstance(recorded, list) else []:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            process = ProcessRef(int(entry[0]), float(entry[1])).process()
            if process is not None:
                left[process.pid] = process
    for process in session_members(previous):
        left[process.pid] = process
    names = terminate(left.values())
    path.unlink(missing_ok=True)
    if not names:
        return []
    note = (f"stopped {len(names)} process(es) left by a run that did not stop (pid "
            f"{previous.pid}, gone): {', '.join(sorted(set(names)))}")
    log.warning(note)
    return [note]


def record_run(data_dir: Path) -> None:
    """This process and everything it started so far, for a later start to clean up after."""
    processes = []
    for process in descendants():
        with contextlib.suppress(psutil.Error):
            processes.append([process.pid, process.create_time()])
    write_owner(data_dir / RUN_FILE, ProcessRef.me(), processes=processes)


@dataclass
class Stack:
    settings: Settings
    services: Services
    host_count: int = 0
    started_ray: bool = False
    sandbox: SandboxThread | None = None
    sandbox_note: str | None = None
    notes: list[str] = field(default_factory=list)  # what the start found and did about it
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

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    notes = take_over_run(settings.data_dir)
    record_run(settings.data_dir)
    services = start_services(settings.database_url, settings.redis_url, settings.data_dir)
    stack = Stack(settings, services, notes=[*notes, *services.notes])
    stack.stops.append(services.stop)
    stack.stops.append(lambda: (settings.data_dir / RUN_FILE).unlink(missing_ok=True))
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
            start_ray(lambda: ray.init(
                address=settings.ray_address, namespace="forma3d", include_dashboard=dashboard,
                dashboard_host="127.0.0.1", runtime_env={"env_vars": env},
                log_to_driver=False))
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
        if not stack.started_ray:  # a cluster of our own ends with ray.shutdown, actors and all
            stack.stops.append(lambda: stop_runtime(stack.host_count))
        os.environ["FORMA3D_ENTITY_HOSTS"] = str(stack.host_count)
        env["FORMA3D_ENTITY_HOSTS"] = str(stack.host_count)

        from forma3d.serving import application

        serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
        if not stack.started_ray:
            stack.stops.append(serve.shutdown)
        serve.run(application(settings.serve_replicas, env), name="forma3d", route_prefix="/",
                  blocking=False)
        if stack.sandbox is not None:
            _wire_sandbox(stack)
    except BaseException:
        stop_everything(stack)
        raise
    record_run(settings.data_dir)
    return stack


# Read by Ray's node processes when they start: a raylet waits for its agents (Python processes)
# to report their ports and aborts the node when they are late; the default waits (about 15 s)
# were missed at load 20 on a 2-core machine.
RAY_START_ENVIRONMENT = {"RAY_agent_register_timeout_ms": "120000",
                         "RAY_raylet_start_wait_time_s": "120"}


def start_ray(start: Callable[[], object], attempts: int = 3) -> None:
    """Start (or join) Ray, again after a start that failed: Ray gives a new node 30 s to
    register with its control store, which a busy machine can miss. What a failed attempt
    started is ended before the next one."""
    import ray

    for attempt in range(1, attempts + 1):
        before = {p.pid for p in descendants()}
        try:
            start()
            return
        except Exception as error:
            with contextlib.suppress(Exception):
                ray.shutdown()
            terminate([p for p in descendants() if p.pid not in before], grace=5.0)
            if attempt == attempts:
                raise
            log.warning("Ray did not start (%s); trying again (%d of %d)", error, attempt + 1,
                        attempts)


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
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.http_port + 1101),
            **RAY_START_ENVIRONMENT}


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
    webhooks at each, as for a real shop), once the API answers; seed the catalog once; confirm
    the farm's printers ready (smart dispatch), their rows synced from the farm right away.

    The simulators keep their state in memory, so the tenant is re-connected on every start."""
    import httpx

    from actors.router import EntityRouter
    from forma3d.db.pool import connect
    from forma3d.messaging.fleet import SyncFleet
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

    router = EntityRouter.connect(stack.host_count)

    async def sync_fleet() -> object:
        return await router.call(SyncFleet(tenant_id=DEFAULT_TENANT_ID))

    async def wire() -> bool:
        conn = await connect(stack.services.database_url)
        try:
            key = await sandbox_key(conn, stack.settings.data_dir, DEFAULT_TENANT_ID)
            return await wire_tenant(conn, DEFAULT_TENANT_ID, urls, config, stack.api_base, key,
                                     sync_fleet)
        finally:
            await conn.close()

    seeded = asyncio.run(wire())
    stack.sandbox_note = ("default tenant connected to the sandbox through the API"
                          + ("; catalog seeded" if seeded else ""))
    state = write_state(stack.settings.data_dir, stack.api_base, urls)
    stack.stops.append(lambda: state.unlink(missing_ok=True))


def run_until_interrupted(stack: Stack) -> None:
    """Block until SIGINT/SIGTERM, then stop everything that was started."""
    signals: list[int] = []
    done = threading.Event()

    def interrupted(signum: int, _frame: object) -> None:
        signals.append(signum)
        done.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupted)
    # A timed wait: Python runs a signal's handler in the main thread only once it runs again,
    # and a terminal's Ctrl-C may land on one of Ray's threads while this one sleeps in a lock.
    rounds = 0
    while not done.wait(0.5):
        rounds += 1
        if rounds % 20 == 0:  # Ray starts workers as it goes: keep the record current
            record_run(stack.settings.data_dir)
    print("forma3d: stopping ...", flush=True)
    stop_everything(stack, lambda: len(signals) > 1)
    print("forma3d: stopped", flush=True)


def stop_everything(stack: Stack, hurry: Callable[[], bool] = lambda: False) -> None:
    """The orderly stop (Serve, the runtime, Ray, the simulators, Redis, PostgreSQL), bounded by
    STOP_SECONDS or cut short by `hurry()` (a second Ctrl-C); then every process this one
    started that still runs, whatever state it is in, is terminated, and killed if it must."""
    started = descendants()
    worker = threading.Thread(target=stack.stop, name="forma3d-stop", daemon=True)
    worker.start()
    deadline = time.monotonic() + STOP_SECONDS
    while worker.is_alive() and time.monotonic() < deadline and not hurry():
        worker.join(0.2)
    if worker.is_alive():
        print("forma3d: stopping did not finish; ending what is left", flush=True)
    left = {p.pid: p for p in [*started, *descendants()]}
    names = terminate(left.values(), grace=5.0)
    if names:
        log.info("ended %d process(es) left after the stop: %s", len(names),
                 ", ".join(sorted(set(names))))
    if worker.is_alive():  # the servers last: nothing that writes to them runs any more
        stack.services.stop()
    (stack.settings.data_dir / RUN_FILE).unlink(missing_ok=True)
