"""Sendcloud v3 and v2 tenants in the same run, through the sandboxes on loopback: each order is
fulfilled through its tenant's API version, carrier webhooks move both kinds of shipment, and a
v2 tenant whose account Sendcloud refuses gets a FAILED shipment with the reason and an action.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.store.tenants import create_tenant
from sandbox.server import serve_sandboxes
from sandbox.tenant import seed_catalog
from tests.e2e.conftest import Farm, connect, sandbox_config

pytestmark = pytest.mark.ray


@contextlib.asynccontextmanager
async def tenant(db_pool: Pool, ingress: str, api: str, opened: date) -> AsyncIterator[Farm]:
    config = sandbox_config()
    config.sendcloud.account_created = opened
    running = await serve_sandboxes(config)
    tenant_id = await create_tenant(db_pool, f"e2e-{api}-{uuid.uuid4().hex[:8]}")
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await connect(db_pool, ingress, tenant_id, running, config,
                  "v3" if api == "v3" else "v2")
    try:
        yield Farm(tenant_id, db_pool, running, parts)
    finally:
        await running.stop()


async def shipment(farm: Farm, want: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await farm.pool.fetchrow("SELECT * FROM shipments WHERE tenant_id = $1",
                                       farm.tenant_id)
        if row is not None and row["status"] in want:
            return dict(row)
        assert asyncio.get_running_loop().time() < deadline, dict(row) if row else None
        await asyncio.sleep(0.2)


async def test_v3_and_v2_tenants_ship_side_by_side(db_pool: Pool, ingress: str) -> None:
    async with tenant(db_pool, ingress, "v3", date(2026, 5, 2)) as v3, \
            tenant(db_pool, ingress, "v2", date(2025, 6, 1)) as v2, \
            tenant(db_pool, ingress, "v2", date(2026, 5, 2)) as refused:
        orders = [farm.send_order([("BENCHY-PLA-RED", 1)]) for farm in (v3, v2, refused)]
        for farm, shopify_id in zip((v3, v2), orders, strict=False):
            assert await farm.wait([shopify_id], {"FULFILLED", "FAILED"}) == {
                shopify_id: "FULFILLED"}
        failed = await shipment(refused, {"FAILED"})
        # Carrier webhooks move v2 parcels and v3 shipments alike, in time order.
        delivered = {api: await shipment(farm, {"DELIVERED"})
                     for api, farm in (("v3", v3), ("v2", v2))}
    assert delivered["v3"]["api_version"] == "v3" and delivered["v3"]["carrier_shipment_id"]
    assert delivered["v2"]["api_version"] == "v2" and delivered["v2"]["carrier_shipment_id"] is None
    assert all(s["shopify_fulfillment_id"] and s["tracking_number"] for s in delivered.values())
    assert "closed to new users" in failed["error"]
    action = await db_pool.fetchval(
        "SELECT data->>'action' FROM event_log WHERE tenant_id = $1"
        " AND type = 'shipment.status-changed' AND data->>'new_status' = 'FAILED'",
        refused.tenant_id)
    assert "api_version v3" in action and "/ship" in action
    reason = await db_pool.fetchval("SELECT reason FROM orders WHERE tenant_id = $1",
                                    refused.tenant_id)
    assert reason == failed["error"]
