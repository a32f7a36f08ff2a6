"""The order flow under replays, lost webhooks, failing prints, cancellations and bad SKUs."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Farm
from tests.polling import eventually

pytestmark = pytest.mark.ray
DONE = {"FULFILLED", "FAILED", "CANCELLED", "ON_HOLD"}
MIX = [[("BENCHY-PLA-RED", 1)], [("VASE-SPIRAL-PLA-WHITE", 2)],
       [("PLANTER-HEX-PLA-GREEN", 1), ("BENCHY-PLA-RED", 2)]]


async def snapshot(farm: Farm) -> dict[str, Any]:
    q = farm.pool.fetch
    return {
        "orders": sorted(tuple(r) for r in await q(
            "SELECT shopify_order_id, status, parts_total, parts_completed FROM orders"
            " WHERE tenant_id = $1", farm.tenant_id)),
        "jobs": sorted(tuple(r) for r in await q(
            "SELECT job_key, status, attempts FROM print_jobs WHERE tenant_id = $1",
            farm.tenant_id)),
        "shipments": sorted(tuple(r) for r in await q(
            "SELECT o.shopify_order_id, s.status, s.parcel_id, s.shopify_fulfillment_id"
            " FROM shipments s JOIN orders o ON o.id = s.order_id WHERE s.tenant_id = $1",
            farm.tenant_id)),
        "events": await farm.pool.fetchval(
            "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND type <> "
            "'shipment.status-changed'", farm.tenant_id),
    }


async def settle(farm: Farm, seconds: float = 3.0) -> None:
    """Wait until the outbox of this tenant is empty and stays empty for a moment."""
    quiet_since = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        pending = await farm.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND done_at IS NULL",
            farm.tenant_id)
        if pending:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = loop.time()
        elif loop.time() - quiet_since > seconds:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the outbox did not settle")


async def test_replaying_every_webhook_twice_shuffled_changes_nothing(farm: Farm) -> None:
    orders = [farm.send_order(lines) for lines in MIX]
    assert set((await farm.wait(orders, DONE)).values()) == {"FULFILLED"}
    sandboxes = farm.sandboxes.sandboxes

    async def carrier_statuses() -> bool:  # the parcels' journey posted statuses to replay too
        return sum(d.outcome == "delivered" for d in sandboxes.sendcloud.dispatcher.log) \
            > len(MIX)

    await eventually(carrier_statuses, what="parcel status webhooks")
    await settle(farm)
    before = await snapshot(farm)
    deliveries = [d for s in (sandboxes.shopify, sandboxes.simplyprint, sandboxes.sendcloud)
                  for d in s.dispatcher.log if d.outcome == "delivered"]
    assert len(deliveries) > 3 * len(MIX)
    replays = deliveries * 2
    random.Random(5).shuffle(replays)
    async with httpx.AsyncClient(timeout=10) as client:
        for delivery in replays:
            response = await client.post(delivery.target, content=delivery.body,
                                         headers=delivery.headers)
            assert response.status_code == 200
            assert response.json()["status"] == "duplicate"
    await settle(farm)
    after = await snapshot(farm)
    # Carrier statuses keep advancing on the sandbox clock; compare everything else.
    assert {k: v for k, v in after.items() if k != "shipments"} == {
        k: v for k, v in before.items() if k != "shipments"}
    assert [s[2:] for s in after["shipments"]] == [s[2:] for s in before["shipments"]]


async def test_lost_farm_webhooks_are_recovered_by_reconciliation(farm: Farm) -> None:
    await farm.control("simplyprint", "webhooks", {"loss_rate": 0.3})
    orders = [farm.send_order(lines) for lines in MIX * 2]
    assert set((await farm.wait(orders, DONE)).values()) == {"FULFILLED"}
    lost = [d for d in farm.sandboxes.sandboxes.simplyprint.dispatcher.log
            if d.outcome == "dropped"]
    assert lost, "the sandbox dropped no webhooks; the test proves nothing"


async def test_failed_prints_are_retried_until_done(farm: Farm) -> None:
    await farm.pool.execute(
        "UPDATE tenants SET settings = settings || '{\"max_print_attempts\": 6}' WHERE id = $1",
        farm.tenant_id)
    await farm.control("simplyprint", "farm", {"failure_rate": 0.25})
    orders = [farm.send_order(lines) for lines in MIX * 2]
    assert set((await farm.wait(orders, DONE)).values()) == {"FULFILLED"}
    retried = await farm.pool.fetchval(
        "SELECT count(*) FROM print_jobs WHERE tenant_id = $1 AND attempts > 0", farm.tenant_id)
    assert retried > 0
    duplicates = await farm.pool.fetchval(
        "SELECT count(*) - count(DISTINCT job_key) FROM print_jobs WHERE tenant_id = $1",
        farm.tenant_id)
    assert duplicates == 0


async def test_exhausted_retries_fail_the_order_and_a_retry_revives_it(farm: Farm) -> None:
    await farm.pool.execute(
        "UPDATE tenants SET settings = settings || '{\"max_print_attempts\": 1}' WHERE id = $1",
        farm.tenant_id)
    await farm.control("simplyprint", "farm", {"failure_rate": 1.0})
    order = farm.send_order([("BENCHY-PLA-RED", 1)])
    assert await farm.wait([order], DONE) == {order: "FAILED"}
    row = await farm.pool.fetchrow(
        "SELECT o.id, o.reason, j.id AS job_id, j.error FROM orders o"
        " JOIN print_jobs j ON j.order_id = o.id WHERE o.tenant_id = $1", farm.tenant_id)
    assert row["reason"] and "failed" in row["reason"]
    assert row["error"]

    await farm.control("simplyprint", "farm", {"failure_rate": 0.0})
    response = await farm.api("POST", f"/print-jobs/{row['job_id']}/retry")
    assert response.status_code == 202, response.text
    assert await farm.wait([order], {"FULFILLED"}) == {order: "FULFILLED"}
    events = await farm.pool.fetch(
        "SELECT type FROM event_log WHERE tenant_id = $1 ORDER BY id", farm.tenant_id)
    assert "print-job.failed" in [e["type"] for e in events]


async def test_unknown_sku_is_held_with_its_reason_then_resumed(farm: Farm) -> None:
    order = farm.send_order([("BENCHY-PLA-RED", 1), ("MYSTERY-SKU", 2)])
    assert await farm.wait([order], DONE) == {order: "ON_HOLD"}
    held = await farm.pool.fetchrow(
        "SELECT id, reason FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
        farm.tenant_id, order)
    assert "MYSTERY-SKU" in held["reason"]
    jobs = await farm.pool.fetchval("SELECT count(*) FROM print_jobs WHERE order_id = $1",
                                    held["id"])
    assert jobs == 1  # the mapped line item is printing while the other waits

    benchy = await farm.pool.fetchrow(
        "SELECT mp.file_id, mp.grams FROM mapping_parts mp JOIN product_mappings m"
        " ON m.id = mp.mapping_id WHERE m.tenant_id = $1 AND m.sku = 'BENCHY-PLA-RED'",
        farm.tenant_id)
    response = await farm.api("POST", "/product-mappings", {
        "sku": "MYSTERY-SKU", "name": "Mystery",
        "parts": [{"name": "mystery", "file_id": str(benchy["file_id"]),
                   "grams": str(benchy["grams"])}]})
    assert response.status_code == 201, response.text
    assert await farm.wait([order], {"FULFILLED"}) == {order: "FULFILLED"}
    assert await farm.pool.fetchval("SELECT count(*) FROM print_jobs WHERE order_id = $1",
                                    held["id"]) == 3
