"""After the fulfilment: the carrier's tracking changes reach Shopify, and a Sendcloud status
whose webhook was lost is caught by reconciling the open parcels (order and tenant entities'
handlers against PostgreSQL and the in-process simulators; the simulators' webhooks go
nowhere, so every webhook is lost)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actors.local import LocalEntities
from actors.scheduler import OPEN_PARCEL_TENANTS, tick
from forma3d.db.pool import Pool
from forma3d.handlers import order as handlers
from forma3d.handlers import tenant as tenants
from forma3d.handlers.order import Order
from forma3d.handlers.testing import stub_services
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.message import parse
from forma3d.messaging.order import ShipmentStatusReport, SyncShopifyTracking
from forma3d.messaging.tenant import ReconcileShipments
from tests.e2e.conftest import Farm
from tests.forma3d.handlers.test_order import command, events, outbox
from tests.forma3d.handlers.test_order_shipping import farm, ready, ship_message, shipment_of

pytestmark = pytest.mark.db


@pytest.fixture(params=["v2", "v3"])
async def shop(request: pytest.FixtureRequest, db_pool: Pool,
               tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    async for running in farm(db_pool, tenant_id, request.param):
        yield running


async def shipped(shop: Farm) -> tuple[Order, int, dict[str, Any]]:
    """A fulfilled order: (order, its parcel id, its Shopify fulfilment)."""
    order = await ready(shop)
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    assert shipment.parcel_id is not None and shipment.shopify_fulfillment_id is not None
    fulfillment = shop.shopify.fulfillments[shipment.shopify_fulfillment_id]
    assert fulfillment["tracking_number"] == shipment.tracking_number
    return order, shipment.parcel_id, fulfillment


def carrier_moves(shop: Farm, parcel_id: int, status_id: int, tracking: str | None = None) -> None:
    """Sendcloud's parcel changes; its webhook goes nowhere (lost)."""
    sendcloud = shop.sandboxes.sandboxes.sendcloud
    record = sendcloud.parcels[parcel_id]
    sendcloud._stop(record)
    if tracking is not None:
        record.data["tracking_number"] = tracking
        record.data["tracking_url"] = f"https://tracking.example/{tracking}"
    sendcloud._set_status(record, status_id)


async def reconcile(shop: Farm) -> int:
    services, _ = stub_services(shop.pool)
    tenant = await tenants.load(services, str(shop.tenant_id))
    return await tenants.reconcile_shipments(tenant, ReconcileShipments(tenant_id=shop.tenant_id))


async def deliver_reports(order: Order) -> list[str]:
    """Apply the ShipmentStatusReports reconciliation sent, as the outbox would."""
    answers = []
    rows = await order.pool.fetch("SELECT * FROM outbox WHERE tenant_id = $1 AND message_type ="
                                  " 'shipment.status' ORDER BY id", order.tenant_id)
    for row in rows:
        message = parse(Envelope(row["target_kind"], row["target_key"], row["message_type"],
                                 str(row["tenant_id"]), row["payload"]))
        assert isinstance(message, ShipmentStatusReport)
        answers.append(await command(order, handlers.shipment_status, message))
    await order.pool.execute("DELETE FROM outbox WHERE tenant_id = $1 AND message_type ="
                             " 'shipment.status'", order.tenant_id)
    return answers


def sync(order: Order) -> SyncShopifyTracking:
    return SyncShopifyTracking(tenant_id=order.tenant_id, order_id=order.order_id)


async def test_a_new_tracking_number_reaches_shopify(shop: Farm) -> None:
    order, _, fulfillment = await shipped(shop)
    first = fulfillment["tracking_number"]
    # The webhook of a re-labelled parcel, as the tenant entity forwards it.
    assert await command(order, handlers.shipment_status, ShipmentStatusReport(
        tenant_id=order.tenant_id, order_id=order.order_id, status_id=3,
        message="En route to sorting center", at=datetime.now(UTC),
        tracking_number="3SNEWLABEL42", tracking_url="https://tracking.example/3SNEWLABEL42",
    )) == "IN_TRANSIT"
    shipment = await shipment_of(order)
    assert shipment.tracking_number == "3SNEWLABEL42"
    [updated] = await events(order, "shipment.tracking-updated")
    assert updated["previous_tracking_number"] == first
    assert updated["tracking_number"] == "3SNEWLABEL42"
    assert len(await outbox(order, "shipment.shopify_sync")) == 1

    assert await handlers.sync_shopify_tracking(order, sync(order)) == \
        "told Shopify: tracking 3SNEWLABEL42, in_transit"
    assert fulfillment["tracking_number"] == "3SNEWLABEL42"
    assert fulfillment["tracking_url"] == "https://tracking.example/3SNEWLABEL42"
    assert fulfillment["shipment_status"] == "in_transit"
    told = await events(order, "shipment.shopify-updated")
    assert [e["tracking_number"] for e in told] == ["3SNEWLABEL42", None]
    # Redelivered: Shopify already knows.
    assert await handlers.sync_shopify_tracking(order, sync(order)) == "nothing to tell Shopify"
    assert len(shop.shopify.fulfillment_events[fulfillment["id"]]) == 1


async def test_a_lost_delivered_webhook_is_caught_by_reconciliation(shop: Farm) -> None:
    order, parcel_id, fulfillment = await shipped(shop)
    assert await reconcile(shop) == 0  # nothing differs yet
    carrier_moves(shop, parcel_id, 11)  # delivered; the webhook is lost

    assert await reconcile(shop) == 1
    assert await deliver_reports(order) == ["DELIVERED"]
    shipment = await shipment_of(order)
    assert shipment.status == "DELIVERED"
    [delivered] = await events(order, "shipment.delivered")
    assert delivered["tracking_number"] == shipment.tracking_number
    assert await reconcile(shop) == 0  # delivered parcels are no longer open

    assert await handlers.sync_shopify_tracking(order, sync(order)) == "told Shopify: delivered"
    assert fulfillment["shipment_status"] == "delivered"
    assert [e["status"] for e in shop.shopify.fulfillment_events[fulfillment["id"]]] == \
        ["delivered"]


async def test_reconciliation_carries_a_new_tracking_number_to_shopify(shop: Farm) -> None:
    order, parcel_id, fulfillment = await shipped(shop)
    carrier_moves(shop, parcel_id, 91, tracking="JVGL0999999")
    assert await reconcile(shop) == 1
    assert await deliver_reports(order) == ["IN_TRANSIT"]
    assert (await shipment_of(order)).tracking_number == "JVGL0999999"
    assert await handlers.sync_shopify_tracking(order, sync(order)) == \
        "told Shopify: tracking JVGL0999999, in_transit"
    assert fulfillment["tracking_number"] == "JVGL0999999"


async def test_the_schedulers_tick_catches_a_lost_delivery(database_url: str,
                                                           shop: Farm) -> None:
    """The scheduler's round without Ray: its tick asks the tenants with open parcels through
    a real entity host (LocalEntities)."""
    order, parcel_id, _ = await shipped(shop)
    assert shop.tenant_id in [r["tenant_id"] for r in await shop.pool.fetch(OPEN_PARCEL_TENANTS)]
    carrier_moves(shop, parcel_id, 11)

    host = LocalEntities(database_url)
    try:
        assert await tick(shop.pool, host, OPEN_PARCEL_TENANTS,  # type: ignore[arg-type]
                          ReconcileShipments, timeout=30) >= 1
    finally:
        await host.close()
    assert await deliver_reports(order) == ["DELIVERED"]
    assert len(await outbox(order, "shipment.shopify_sync")) == 1
    assert shop.tenant_id not in [r["tenant_id"]
                                  for r in await shop.pool.fetch(OPEN_PARCEL_TENANTS)]
