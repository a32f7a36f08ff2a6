"""Orders from Shopify to a fulfilled shipment, through the sandboxes on loopback."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Farm

pytestmark = pytest.mark.ray

MIX = [
    [("BENCHY-PLA-RED", 1)],
    [("VASE-SPIRAL-PLA-WHITE", 1)],
    [("PLANTER-HEX-PLA-GREEN", 2)],
    [("BENCHY-PLA-RED", 3), ("GRID-BIN-2X3-PETG-BLACK", 1)],
]


async def test_orders_are_printed_shipped_and_fulfilled(farm: Farm) -> None:
    orders = [farm.send_order(lines) for lines in MIX]
    final = await farm.wait(orders, {"FULFILLED", "FAILED", "CANCELLED", "ON_HOLD"})
    assert set(final.values()) == {"FULFILLED"}, final

    expected_jobs = sum(farm.parts_per_unit[sku] * qty for lines in MIX for sku, qty in lines)
    jobs = await farm.pool.fetch(
        "SELECT job_key, status FROM print_jobs WHERE tenant_id = $1", farm.tenant_id)
    assert len(jobs) == expected_jobs
    assert {j["status"] for j in jobs} == {"COMPLETED"}
    assert len({j["job_key"] for j in jobs}) == expected_jobs

    shipments = await farm.pool.fetch(
        "SELECT parcel_id, tracking_number, label, shopify_fulfillment_id FROM shipments"
        " WHERE tenant_id = $1", farm.tenant_id)
    assert len(shipments) == len(MIX)
    assert all(s["parcel_id"] and s["tracking_number"] and s["shopify_fulfillment_id"]
               for s in shipments)
    assert all(bytes(s["label"]).startswith(b"%PDF") for s in shipments)
    fulfilled = [o for o in farm.shopify.orders.values() if o.get("fulfillment_status")]
    assert len(fulfilled) == len(MIX)
