"""The chaos run, short: `forma3d demo --chaos` on 15 orders kills an entity host, the outbox
dispatcher, the scheduler and a Serve replica, and restarts the embedded PostgreSQL and Redis,
each once at a seeded moment; every order still ends FULFILLED, nothing is doubled and nothing
is left as a dead letter.

The demo runs as its own process with its own data directory, ports and Ray cluster, so its
faults reach nothing of this session's (or anyone else's) cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forma3d.chaos import FAULTS
from tests.e2e.test_demo import free_port_block

pytestmark = pytest.mark.ray

ORDERS = 15


def test_a_chaos_run_fulfils_every_order_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS", "FORMA3D_ENTITY_HOSTS")}
    env.update(FORMA3D_DATA_DIR=str(tmp_path / "data"),
               FORMA3D_HTTP_PORT=str(free_port_block()))
    done = subprocess.run(
        [sys.executable, "-m", "forma3d.cli", "demo", "--orders", str(ORDERS), "--chaos",
         "--seed", "3", "--json", "--no-progress", "--timeout", "600"],
        env=env, capture_output=True, text=True, timeout=1500)
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout)
    faults = report["chaos"]["faults"]
    assert sorted(f["fault"] for f in faults) == sorted(FAULTS), faults
    assert [f for f in faults if f["error"]] == [], faults
    assert report["fulfilled"] == report["orders_sent"] == ORDERS, report
    assert report["shipments"] == report["parcels"] == ORDERS, report
    assert report["shopify_fulfillments"] == ORDERS, report
    for duplicates in ("duplicate_print_jobs", "duplicate_farm_jobs", "duplicate_parcels",
                       "duplicate_shopify_fulfillments"):
        assert report[duplicates] == 0, (duplicates, report)
    assert report["dead_letters"] == {"outbox": 0, "webhooks": 0}, report
    assert done.returncode == 0, done.stderr[-3000:]
