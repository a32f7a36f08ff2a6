"""GET /api/v1/overview against real PostgreSQL, on rows inserted directly: every figure counts
only the caller's tenant, hours and statuses come back complete (zeros included), and the
oldest waiting order is the first received that is neither fulfilled nor cancelled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.domain.orders.states import OrderStatus
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant

pytestmark = pytest.mark.db
V1 = "/api/v1"


async def order(pool: Pool, tenant_id: uuid.UUID, name: str, status: str,
                received: datetime) -> uuid.UUID:
    order_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO orders (id, tenant_id, shopify_order_id, name, status, received_at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        order_id, tenant_id, uuid.uuid4().int % 2**62, name, status, received)
    return order_id


async def completed_jobs(pool: Pool, tenant_id: uuid.UUID, at: list[datetime]) -> None:
    file_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
        " VALUES ($1, $2, 'p.gcode', $3, 2, 'G1')", file_id, tenant_id, uuid.uuid4().hex)
    await pool.executemany(
        """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, copy_number, file_id, status,
                                   completed_at)
           VALUES ($1, $2, $3, 'STOCK', 1, $4, 'COMPLETED', $5)""",
        [(uuid.uuid4(), tenant_id, f"k:{n}", file_id, t) for n, t in enumerate(at)])


async def printer(pool: Pool, tenant_id: uuid.UUID, **values: Any) -> None:
    row = {"state": "operational", "online": True, "enabled": True, "ready": True} | values
    await pool.execute(
        """INSERT INTO printers (id, tenant_id, name, state, online, enabled, ready)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""", uuid.uuid4(), tenant_id,
        f"p-{uuid.uuid4().hex[:6]}", row["state"], row["online"], row["enabled"], row["ready"])


async def test_overview_counts_the_tenants_orders_jobs_and_printers(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    now = datetime.now(UTC)
    oldest = await order(db_pool, tenant_id, "#1001", "ON_HOLD", now - timedelta(hours=30))
    await order(db_pool, tenant_id, "#1000", "FULFILLED", now - timedelta(hours=40))
    await order(db_pool, tenant_id, "#1002", "PROCESSING", now - timedelta(hours=2))
    await order(db_pool, tenant_id, "#1003", "PROCESSING", now - timedelta(hours=1))
    await completed_jobs(db_pool, tenant_id, [now, now, now - timedelta(hours=3),
                                              now - timedelta(hours=30)])  # the last: too old
    await printer(db_pool, tenant_id)  # idle
    await printer(db_pool, tenant_id, ready=False)  # awaiting bed clear: attention
    await printer(db_pool, tenant_id, state="error")  # attention
    await printer(db_pool, tenant_id, state="printing")
    await printer(db_pool, tenant_id, state="offline", online=False)
    await printer(db_pool, tenant_id, enabled=False)

    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")  # counts nothing here
    await order(db_pool, other, "#9", "PENDING", now - timedelta(days=9))
    await printer(db_pool, other, state="error")
    await completed_jobs(db_pool, other, [now])

    key = (await create_api_key(db_pool, tenant_id, "viewer", role="viewer")).key
    answer = await api.get(f"{V1}/overview", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    body = answer.json()

    assert body["orders_by_status"] == {s.value: 0 for s in OrderStatus} | {
        "ON_HOLD": 1, "FULFILLED": 1, "PROCESSING": 2}
    hours = body["jobs_completed_per_hour"]
    assert len(hours) == 24
    by_hour = {datetime.fromisoformat(h["hour"]): h["completed"] for h in hours}
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    assert by_hour[this_hour] == 2
    assert by_hour[this_hour - timedelta(hours=3)] == 1
    assert sum(by_hour.values()) == 3
    starts = sorted(by_hour)
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(starts))
    assert starts[-1] >= this_hour  # the current hour is the last
    assert body["printers_by_place"] == {"attention": 2, "printing": 1, "idle": 1,
                                         "disabled": 1, "offline": 1}
    assert body["waiting_orders"] == 3
    assert body["oldest_waiting_order"]["id"] == str(oldest)
    assert body["oldest_waiting_order"]["name"] == "#1001"
    assert body["oldest_waiting_order"]["status"] == "ON_HOLD"


async def test_an_empty_tenant_has_zeros_and_no_waiting_order(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    key = (await create_api_key(db_pool, tenant_id, "viewer", role="viewer")).key
    body = (await api.get(f"{V1}/overview", headers={"Authorization": f"Bearer {key}"})).json()
    assert set(body["orders_by_status"].values()) == {0}
    assert [h["completed"] for h in body["jobs_completed_per_hour"]] == [0] * 24
    assert set(body["printers_by_place"].values()) == {0}
    assert body["waiting_orders"] == 0 and body["oldest_waiting_order"] is None


async def test_overview_needs_a_caller(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"{V1}/overview")).status_code == 401
