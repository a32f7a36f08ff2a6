"""The sandboxes inside `forma3d up`: their own event loop on a daemon thread, stopped with the
stack, and the default tenant wired to them at each start (they are in-memory)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from forma3d.store import files
from forma3d.store.apikeys import create_api_key, tenant_for_key
from sandbox.farm import PrinterSpec
from sandbox.server import RunningSandboxes, SandboxConfig, serve_sandboxes
from sandbox.tenant import CATALOG, connect_tenant, seed_catalog

SERVICES = ("shopify", "simplyprint", "sendcloud")
KEY_FILE = "sandbox.key"  # the API key `forma3d up` connects the sandbox tenant with
STATE_FILE = "sandbox.json"  # in the data directory: where `forma3d sandbox shopify ...` looks
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FARM_SIZE = 8


def stack_config(http_port: int, *, speedup: float = 60.0,
                 seed: int | None = None) -> SandboxConfig:
    """Sandbox ports next to the API's (8001-8003 by default) so commands can find them.

    The seed defaults to the clock: the simulators are in-memory, and a fixed seed would hand
    out the same Shopify order ids after a restart, which the database already holds.
    """
    config = SandboxConfig(seed=time.time_ns() % 2**31 if seed is None else seed,
                           speedup=speedup)
    for offset, service in enumerate(SERVICES, start=1):
        port = http_port + offset
        setattr(config, f"{service}_port", port if port <= 65535 and _free(port) else 0)
    # Identical printers: every catalog part fits every printer, so the demo measures the flow,
    # not a material mismatch.
    config.simplyprint.printers = [PrinterSpec(name=f"MK4 #{i + 1}", model="MK4")
                                   for i in range(FARM_SIZE)]
    config.sendcloud.status_interval = 600
    return config


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class SandboxThread:
    """Serves the three simulators from a background thread owned by a synchronous caller."""

    config: SandboxConfig
    running: RunningSandboxes | None = None
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None

    @property
    def urls(self) -> dict[str, str]:
        return dict(self.running.urls) if self.running else {}

    def start(self) -> dict[str, str]:
        self._thread = threading.Thread(target=self._loop.run_forever, name="forma3d-sandbox",
                                        daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(serve_sandboxes(self.config), self._loop)
        try:
            self.running = future.result(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self.urls

    def stop(self) -> None:
        if self.running is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.running.stop(), self._loop).result(10)
            self.running = None
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
            self._loop.close()


async def has_real_credentials(db: Any, tenant_id: uuid.UUID) -> bool:
    """True when an integration of the tenant points anywhere but loopback (a real service)."""
    rows = await db.fetch("SELECT config FROM integrations WHERE tenant_id = $1", tenant_id)
    for row in rows:
        config = row["config"] if isinstance(row["config"], dict) else json.loads(row["config"])
        host = urlsplit(str(config.get("base_url") or "https://real.invalid")).hostname
        if host not in LOOPBACK:
            return True
    return False


async def sandbox_key(db: Any, data_dir: Path, tenant_id: uuid.UUID) -> str:
    """The API key the stack connects the tenant with (kept in the data directory, 0600, and
    made again if it was revoked): the sandbox is connected through the REST API, as a shop is."""
    key = _read_key(data_dir / KEY_FILE)
    if key and await tenant_for_key(db, key) == tenant_id:
        return key
    created = await create_api_key(db, tenant_id, "sandbox")
    _keep_key(data_dir / KEY_FILE, created.key)
    return created.key


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _keep_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(key)
    path.chmod(0o600)


async def wire_tenant(db: Any, tenant_id: uuid.UUID, urls: dict[str, str],
                      config: SandboxConfig, api_base: str, api_key: str,
                      sync_fleet: Callable[[], Awaitable[object]]) -> bool:
    """Connect the tenant to the sandboxes through the REST API (which registers our webhooks
    at each) with smart dispatch; seed the catalog only the first time; then confirm the farm's
    printers (`confirm_printers`; `sync_fleet` asks the tenant's fleet to sync) so they pull
    jobs.

    Re-seeding would replace mapping parts that existing print jobs refer to, so it runs only
    when a catalog SKU has no mapping yet. A new sandbox is a new, empty SimplyPrint account:
    file ids uploaded to the previous one no longer exist there, so they are forgotten (before
    any printer may start a job). Returns whether it seeded.
    """
    await connect_tenant(api_base, api_key, urls, config, dispatch_mode="smart")
    await files.forget_farm_files(db, tenant_id)
    mapped = await db.fetchval(
        "SELECT count(*) FROM product_mappings WHERE tenant_id = $1 AND sku = ANY($2)",
        tenant_id, list(CATALOG))
    seeded = bool(mapped < len(CATALOG))
    if seeded:
        await seed_catalog(db, tenant_id)
    await confirm_printers(api_base, api_key, len(config.simplyprint.printers), sync_fleet)
    return seeded


async def confirm_printers(api_base: str, api_key: str, expected: int,
                           sync_fleet: Callable[[], Awaitable[object]],
                           attempts: int = 30) -> int:
    """Confirm the sandbox farm's printers once, as their operator would: they clear their own
    beds (the simulated farm has no bed-clear step), so each is `auto_ready` and `ready`.

    Smart dispatch starts jobs only on ready printers, and a printer's row, created by the fleet
    sync, starts not ready (its bed is unknown); without this the demo's jobs stayed QUEUED on
    idle printers. The sync is asked for here (`sync_fleet`) rather than awaited from the fleet
    clock's next round. Returns the printers confirmed now.
    """
    async with httpx.AsyncClient(timeout=30, headers={
            "Authorization": f"Bearer {api_key}"}) as client:
        base = f"{api_base.rstrip('/')}/api/v1/printers"
        rows: list[dict[str, Any]] = []
        for attempt in range(attempts):
            await sync_fleet()
            response = await client.get(base)
            response.raise_for_status()
            rows = [r for r in response.json() if r.get("farm_printer_id") is not None]
            if len(rows) >= expected:
                break
            await asyncio.sleep(min(0.2 * 2 ** attempt, 2.0))
        else:
            raise RuntimeError(f"the fleet sync registered {len(rows)} of the sandbox farm's "
                               f"{expected} printers")
        confirmed = 0
        for row in rows:
            if row["auto_ready"] and row["ready"]:
                continue
            patched = await client.patch(f"{base}/{row['id']}",
                                         json={"auto_ready": True, "ready": True})
            if patched.status_code != 200:
                raise RuntimeError(f"confirming printer {row['name']} failed: "
                                   f"{patched.status_code} {patched.text}")
            confirmed += 1
    return confirmed


def write_state(data_dir: Path, api_base: str, urls: dict[str, str]) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / STATE_FILE
    path.write_text(json.dumps({"api": api_base, "urls": urls, "pid": os.getpid()}))
    return path


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The running stack's sandbox URLs, if `forma3d up` wrote them and is still alive."""
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state
