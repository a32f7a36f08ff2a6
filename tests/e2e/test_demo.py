"""`forma3d demo` as a user runs it: a subprocess that starts its own stack (embedded PostgreSQL
and Redis, a local Ray, the Serve app and the sandboxes), sends orders and prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

ORDERS = 5


def free_port_block() -> int:
    """A port whose next three neighbours (the sandboxes) are free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port < 65000 and all(_free(port + i) for i in range(4)):
            return port
    raise RuntimeError("no block of four free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_demo_fulfils_every_order_without_duplicates(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS")}
    env.update({"FORMA3D_DATA_DIR": str(tmp_path / "data"), "RAY_ADDRESS": "local",
                "FORMA3D_HTTP_PORT": str(free_port_block()), "FORMA3D_ENTITY_HOSTS": "1"})
    forma3d = Path(sys.executable).with_name("forma3d")
    process = await asyncio.create_subprocess_exec(
        str(forma3d), "demo", "--orders", str(ORDERS), "--json", "--timeout", "120",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()[-3000:]
    lines = out.decode().strip().splitlines()
    assert len(lines) == 1, out.decode()
    report = json.loads(lines[0])

    assert report["dispatch_mode"] == "smart"  # the sandbox farm's printers pull our jobs
    assert report["orders"] == ORDERS
    assert report["fulfilled"] == ORDERS
    assert report["failed"] == report["cancelled"] == 0
    assert report["duplicate_print_jobs"] == 0
    assert report["print_jobs"] == report["print_jobs_completed"] > ORDERS  # multi-part, qty > 1
    assert report["shipments"] == ORDERS
    assert report["farm_prints"] >= report["print_jobs"]
    assert report["farm_queue_items"] == 0  # smart dispatch: nothing in SimplyPrint's queue
    assert report["duplicate_farm_jobs"] == 0  # no print started twice on the farm
    assert report["sendcloud_api"] == "v3"  # new connections ship through v3 shipments
    assert report["shopify_fulfillments"] == ORDERS
    for latency in ("webhook_to_queued_ms", "webhook_to_fulfilled_ms"):
        assert set(report[latency]) >= {"p50", "p99"}
        assert 0 <= report[latency]["p50"] <= report[latency]["p99"]
    assert b"orders done" in err  # the progress bar is on stderr, not in the JSON
