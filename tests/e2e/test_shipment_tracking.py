"""The whole stack with every Sendcloud webhook lost: the scheduler's reconciliation of open
parcels finds the delivery, and the Shopify fulfilment is told it was delivered."""

from __future__ import annotations

from tests.e2e.conftest import Farm
from tests.polling import eventually


async def test_a_delivery_whose_webhooks_were_all_lost_reaches_shopify(farm: Farm) -> None:
    await farm.control("sendcloud", "webhooks", {"loss_rate": 1.0})
    order = farm.send_order([("BENCHY-PLA-RED", 1)])
    await farm.wait([order], {"FULFILLED"})
    shipment = await farm.pool.fetchrow(
        "SELECT s.* FROM shipments s JOIN orders o ON o.id = s.order_id"
        " WHERE o.tenant_id = $1 AND o.shopify_order_id = $2", farm.tenant_id, order)
    assert shipment is not None and shipment["shopify_fulfillment_id"] is not None
    fulfillment = farm.shopify.fulfillments[shipment["shopify_fulfillment_id"]]

    async def told() -> bool:
        return fulfillment["shipment_status"] == "delivered"

    await eventually(told, what="Shopify's fulfilment shows the delivery")
    assert await farm.pool.fetchval("SELECT status FROM shipments WHERE id = $1",
                                    shipment["id"]) == "DELIVERED"
    lost = [d for d in farm.sandboxes.sandboxes.sendcloud.dispatcher.log
            if d.outcome == "dropped"]
    assert lost, "the sandbox dropped no Sendcloud webhooks; the test proves nothing"
    assert not [d for d in farm.sandboxes.sandboxes.sendcloud.dispatcher.log
                if d.outcome == "delivered"]
