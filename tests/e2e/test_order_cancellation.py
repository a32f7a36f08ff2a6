"""Cancelling at every stage ends CANCELLED with nothing left queued, printing or announced."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.server import SandboxConfig
from tests.e2e.conftest import Farm, sandbox_config

pytestmark = pytest.mark.ray
DONE = {"FULFILLED", "FAILED", "CANCELLED", "ON_HOLD"}


async def order_row(farm: Farm, shopify_id: int) -> dict[str, object]:
    row = await farm.pool.fetchrow(
        "SELECT * FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
        farm.tenant_id, shopify_id)
    assert row is not None
    return dict(row)


async def wait_for(farm: Farm, sql: str, *args: object, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await farm.pool.fetchval(sql, *args):
        assert loop.time() < deadline, f"condition never held: {sql}"
        await asyncio.sleep(0.1)


def nothing_on_the_farm(farm: Farm) -> None:
    simulated = farm.sandboxes.sandboxes.simplyprint.farm
    assert simulated.open_items() == []
    assert [j.uid for j in simulated.jobs.values() if j.state in ("printing", "paused")] == []


async def test_cancel_before_anything_is_queued(farm: Farm) -> None:
    held = farm.send_order([("NO-SUCH-SKU", 1)])
    assert await farm.wait([held], DONE) == {held: "ON_HOLD"}
    farm.shopify.cancel_order(held)
    assert await farm.wait([held], {"CANCELLED"}) == {held: "CANCELLED"}
    order = await order_row(farm, held)
    items = await farm.pool.fetch("SELECT status FROM line_items WHERE order_id = $1",
                                  order["id"])
    assert {i["status"] for i in items} == {"CANCELLED"}


async def test_cancel_while_queued_on_the_farm(farm: Farm) -> None:
    await farm.control("simplyprint", "farm", {"auto_print": False})
    queued = farm.send_order([("VASE-SPIRAL-PLA-WHITE", 1)])
    order = await farm.wait([queued], {"PROCESSING"})
    assert order == {queued: "PROCESSING"}
    await wait_for(farm, "SELECT count(*) = 2 FROM print_jobs WHERE tenant_id = $1"
                         " AND farm_queue_item_id IS NOT NULL", farm.tenant_id)
    assert len(farm.sandboxes.sandboxes.simplyprint.farm.open_items()) == 2
    farm.shopify.cancel_order(queued)
    assert await farm.wait([queued], {"CANCELLED"}) == {queued: "CANCELLED"}
    nothing_on_the_farm(farm)
    jobs = await farm.pool.fetch("SELECT status FROM print_jobs WHERE tenant_id = $1",
                                 farm.tenant_id)
    assert {j["status"] for j in jobs} == {"CANCELLED"}


async def test_cancel_while_printing_stops_the_printer(farm: Farm) -> None:
    await farm.control("simplyprint", "clock", {"speedup": 2})  # a print now lasts minutes
    printing = farm.send_order([("BENCHY-PLA-RED", 2)])
    await wait_for(farm, "SELECT count(*) > 0 FROM print_jobs WHERE tenant_id = $1"
                         " AND status = 'PRINTING'", farm.tenant_id)
    farm.shopify.cancel_order(printing)
    assert await farm.wait([printing], {"CANCELLED"}) == {printing: "CANCELLED"}
    nothing_on_the_farm(farm)
    cancelled = [j for j in farm.sandboxes.sandboxes.simplyprint.farm.jobs.values()
                 if j.state == "cancelled"]
    assert cancelled, "the running print was not stopped"


@pytest.fixture
def sandbox() -> SandboxConfig:
    config = sandbox_config()
    config.sendcloud.status_interval = 10**7  # parcels wait at "announced": cancellable
    return config


async def test_cancel_after_the_label_cancels_the_parcel(farm: Farm) -> None:
    # Fulfilment waits for Shopify, so the order rests between label and fulfilment.
    order_id = farm.send_order([("BENCHY-PLA-RED", 1)])
    await wait_for(farm, "SELECT count(*) > 0 FROM print_jobs WHERE tenant_id = $1",
                   farm.tenant_id)
    await farm.pool.execute("UPDATE integrations SET enabled = false WHERE tenant_id = $1"
                            " AND service = 'shopify'", farm.tenant_id)
    await wait_for(farm, "SELECT count(*) > 0 FROM shipments WHERE tenant_id = $1"
                         " AND parcel_id IS NOT NULL", farm.tenant_id)
    order = await order_row(farm, order_id)
    assert order["status"] == "READY_FOR_FULFILLMENT"
    response = await farm.api("POST", f"/orders/{order['id']}/cancel",
                              {"reason": "customer changed their mind"})
    assert response.status_code == 202, response.text
    assert await farm.wait([order_id], {"CANCELLED"}) == {order_id: "CANCELLED"}
    shipment = await farm.pool.fetchrow("SELECT * FROM shipments WHERE order_id = $1",
                                        order["id"])
    assert shipment["status"] in ("CANCELLED", "CANCEL_REQUESTED")
    parcel = farm.sandboxes.sandboxes.sendcloud.parcels[shipment["parcel_id"]]
    assert parcel.data["status"]["id"] in (1999, 2000, 2001)  # cancelled, or being cancelled
    assert shipment["shopify_fulfillment_id"] is None
