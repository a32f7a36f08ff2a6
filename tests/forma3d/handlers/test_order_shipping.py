"""The order entity's shipping handlers with a Sendcloud v3 tenant and with refusals, called
directly (no Ray) against PostgreSQL and the in-process simulators: a v3 shipment and its
cancel, a v2 account Sendcloud refuses, a Shopify fulfilment refused with 404, a transient
outage, a tenant whose Sendcloud or Shopify was disconnected, and the operator's retry of
each."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.handlers import order as handlers
from forma3d.handlers.order import Order
from forma3d.integrations.errors import TransientError
from forma3d.integrations.settings import SendcloudSettings, ShopifySettings
from forma3d.messaging.order import CancelOrder, RetryShipment, ShipOrder
from forma3d.messaging.refusals import Conflict
from forma3d.store import shipments
from forma3d.store.integrations import (
    connections,
    load_integration,
    remove_integration,
    save_integration,
)
from forma3d.store.shipments import ShipmentRow
from sandbox.server import serve_sandboxes
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config
from tests.forma3d.handlers.test_order import (
    command,
    events,
    jobs,
    order_row,
    outbox,
    report,
    started,
)

pytestmark = pytest.mark.db

NOWHERE = "http://127.0.0.1:9"  # a Sendcloud that does not answer


async def farm(db_pool: Pool, tenant_id: uuid.UUID, api: str,
               opened: date = date(2025, 6, 1)) -> AsyncIterator[Farm]:
    config = sandbox_config(auto_print=False)
    config.sendcloud.status_interval = 10**7
    config.sendcloud.account_created = opened
    running = await serve_sandboxes(config)
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config,
                           sendcloud_api="v3" if api == "v3" else "v2")
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


@pytest.fixture
async def v3shop(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    async for shop in farm(db_pool, tenant_id, "v3"):
        yield shop


@pytest.fixture
async def refused_v2(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    """A tenant still connected with v2 whose Sendcloud account opened after the cut-off."""
    async for shop in farm(db_pool, tenant_id, "v2", opened=date(2026, 5, 2)):
        yield shop


async def ready(shop: Farm, sku: str = "BENCHY-PLA-RED") -> Order:
    order = await started(shop, [(sku, 1)])
    for job in await jobs(order):
        assert await report(order, job, "COMPLETED") == "applied"
    assert (await order_row(order))["status"] == "READY_FOR_FULFILLMENT"
    return order


def ship_message(order: Order) -> ShipOrder:
    return ShipOrder(tenant_id=order.tenant_id, order_id=order.order_id)


async def shipment_of(order: Order) -> ShipmentRow:
    shipment = await shipments.get_shipment(order.pool, order.tenant_id, order.order_id)
    assert shipment is not None
    return shipment


async def retry(order: Order) -> Any:
    return await command(order, handlers.retry_shipment, RetryShipment(
        tenant_id=order.tenant_id, order_id=order.order_id, by="ops@farm"))


async def test_a_v3_tenant_ships_through_a_v3_shipment(v3shop: Farm) -> None:
    order = await ready(v3shop)
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    assert shipment.api_version == "v3" and shipment.carrier_shipment_id
    assert shipment.status == "LABEL_CREATED" and shipment.tracking_number
    label = await order.pool.fetchval("SELECT label FROM shipments WHERE id = $1", shipment.id)
    assert bytes(label).startswith(b"%PDF")
    [created] = await events(order, "shipment.created")
    assert created["sendcloud_api"] == "v3"
    assert created["sendcloud_shipment_id"] == shipment.carrier_shipment_id
    parcel = v3shop.sandboxes.sandboxes.sendcloud.parcels[shipment.parcel_id].data
    assert parcel["tracking_number"] == shipment.tracking_number
    assert (await order_row(order))["status"] == "FULFILLED"


async def test_a_v3_shipment_is_cancelled_through_v3(v3shop: Farm) -> None:
    order = await ready(v3shop)
    await v3shop.pool.execute("UPDATE integrations SET enabled = false WHERE tenant_id = $1"
                              " AND service = 'shopify'", v3shop.tenant_id)
    # The parcel is made; the fulfilment waits, refused visibly, for Shopify to be connected.
    assert await handlers.ship(order, ship_message(order)) == "fulfilment refused"
    assert "shopify is not configured" in ((await shipment_of(order)).fulfilment_error or "")
    assert await handlers.cancel(order, CancelOrder(
        tenant_id=order.tenant_id, order_id=order.order_id)) == "cancelled"
    shipment = await shipment_of(order)
    assert shipment.status == "CANCEL_REQUESTED"  # v3 answered 202: queued for 14 days
    parcel = v3shop.sandboxes.sandboxes.sendcloud.parcels[shipment.parcel_id].data
    assert parcel["status"]["id"] == 1999


async def test_a_refused_v2_account_fails_visibly_and_an_operator_retry_ships_on_v3(
        refused_v2: Farm) -> None:
    order = await ready(refused_v2)
    assert await handlers.ship(order, ship_message(order)) == "parcel failed"
    shipment = await shipment_of(order)
    assert shipment.status == "FAILED" and shipment.parcel_id is None
    assert shipment.api_version == "v2"
    assert shipment.error is not None and "closed to new users" in shipment.error
    [failed] = await events(order, "shipment.status-changed")
    assert failed["new_status"] == "FAILED" and failed["reason"] == shipment.error
    assert "api_version v3" in failed["action"]
    assert f"POST /api/v1/orders/{order.order_id}/ship" in failed["action"]
    row = await order_row(order)
    assert row["status"] == "READY_FOR_FULFILLMENT" and row["reason"] == shipment.error
    # Redelivery changes nothing: the failure waits for an operator.
    assert (await handlers.ship(order, ship_message(order))).startswith("shipment failed")
    assert not refused_v2.sandboxes.sandboxes.sendcloud.parcels

    settings = await load_integration(order.pool, order.tenant_id, SendcloudSettings)
    assert settings is not None and settings.api_version == "v2"
    await save_integration(order.pool, order.tenant_id,
                           settings.model_copy(update={"api_version": "v3"}))
    assert await retry(order) == "shipment restarted"
    restarted = await shipment_of(order)
    assert restarted.status == "PENDING" and restarted.error is None
    assert restarted.external_reference == f"forma3d-{order.order_id}-r1"
    assert len(await outbox(order, "order.ship")) == 2  # the printed order's, and the retry's
    assert (await order_row(order))["reason"] is None

    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    assert shipment.api_version == "v3" and shipment.status == "LABEL_CREATED"
    changes = [e["new_status"] for e in await events(order, "shipment.status-changed")]
    assert changes == ["FAILED", "PENDING", "LABEL_CREATED"]


async def test_a_refused_fulfilment_is_recorded_and_retried_by_an_operator(
        v3shop: Farm) -> None:
    order = await ready(v3shop)
    shopify_id = await order.pool.fetchval("SELECT shopify_order_id FROM orders WHERE id = $1",
                                           order.order_id)
    sim = v3shop.shopify
    hidden = sim.orders.pop(shopify_id)  # Shopify no longer knows the order: 404
    assert await handlers.ship(order, ship_message(order)) == "fulfilment refused"
    shipment = await shipment_of(order)
    assert shipment.parcel_id is not None and shipment.shopify_fulfillment_id is None
    assert shipment.fulfilment_error is not None and "404" in shipment.fulfilment_error
    [refusal] = await events(order, "shipment.fulfilment-failed")
    assert refusal["http_status"] == 404 and refusal["reason"] == shipment.fulfilment_error
    assert f"/api/v1/orders/{order.order_id}/ship" in refusal["action"]
    row = await order_row(order)
    assert row["status"] == "READY_FOR_FULFILLMENT" and "404" in row["reason"]

    sim.orders[shopify_id] = hidden
    assert await retry(order) == "shipping again"
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    assert shipment.fulfilment_error is None and shipment.shopify_fulfillment_id is not None
    assert len(v3shop.sandboxes.sandboxes.sendcloud.parcels) == 1  # no second label
    assert (await order_row(order))["status"] == "FULFILLED"
    with pytest.raises(Conflict, match="FULFILLED"):
        await retry(order)


async def test_a_sendcloud_outage_raises_for_the_outbox_to_retry(v3shop: Farm) -> None:
    order = await ready(v3shop)
    settings = await load_integration(order.pool, order.tenant_id, SendcloudSettings)
    assert settings is not None
    await save_integration(order.pool, order.tenant_id,
                           settings.model_copy(update={"base_url": NOWHERE}))
    with pytest.raises(TransientError):
        await handlers.ship(order, ship_message(order))
    shipment = await shipment_of(order)
    # Still PENDING (the outbox retries it): the reason is kept, counted as one failure.
    assert shipment.status == "PENDING" and shipment.create_failures == 1
    assert shipment.error is not None and "cannot connect" in shipment.error
    assert not await events(order, "shipment.status-changed")


async def test_a_tenant_without_sendcloud_fails_the_shipment_visibly_until_reconnected(
        v3shop: Farm) -> None:
    order = await ready(v3shop)
    settings = await load_integration(order.pool, order.tenant_id, SendcloudSettings)
    assert settings is not None
    assert await remove_integration(order.pool, order.tenant_id, "sendcloud")
    assert await handlers.ship(order, ship_message(order)) == "parcel failed"
    shipment = await shipment_of(order)
    assert shipment.status == "FAILED" and "sendcloud is not configured" in (shipment.error or "")
    [failed] = await events(order, "shipment.status-changed")
    assert failed["new_status"] == "FAILED" and failed["reason"] == shipment.error
    assert "PUT /api/v1/integrations/sendcloud" in failed["action"]
    assert f"POST /api/v1/orders/{order.order_id}/ship" in failed["action"]
    assert (await order_row(order))["reason"] == shipment.error

    await save_integration(order.pool, order.tenant_id, settings)
    assert await retry(order) == "shipment restarted"
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"


async def test_a_tenant_without_shopify_keeps_the_refused_fulfilment_for_an_operator(
        v3shop: Farm) -> None:
    order = await ready(v3shop)
    settings = await load_integration(order.pool, order.tenant_id, ShopifySettings)
    assert settings is not None
    assert await remove_integration(order.pool, order.tenant_id, "shopify")
    assert await handlers.ship(order, ship_message(order)) == "fulfilment refused"
    shipment = await shipment_of(order)
    assert shipment.parcel_id is not None
    assert "shopify is not configured" in (shipment.fulfilment_error or "")
    [refusal] = await events(order, "shipment.fulfilment-failed")
    assert refusal["http_status"] is None and refusal["reason"] == shipment.fulfilment_error
    assert "PUT /api/v1/integrations/shopify" in refusal["action"]
    row = await order_row(order)
    assert row["status"] == "READY_FOR_FULFILLMENT" and row["reason"] == refusal["reason"]

    await save_integration(order.pool, order.tenant_id, settings)
    assert await retry(order) == "shipping again"
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    assert len(v3shop.sandboxes.sandboxes.sendcloud.parcels) == 1  # no second label


async def test_retry_refuses_an_order_that_is_not_ready(v3shop: Farm) -> None:
    order = await started(v3shop, [("BENCHY-PLA-RED", 1)])
    with pytest.raises(Conflict, match="PROCESSING"):
        await retry(order)


async def test_credentials_refused_during_fulfilment_mark_the_connection_failing(
        v3shop: Farm) -> None:
    order = await ready(v3shop)
    v3shop.shopify.config.access_token = "shpat_revoked"  # the merchant uninstalled the app
    assert await handlers.ship(order, ship_message(order)) == "fulfilment refused"
    rows = {row.service: row for row in await connections(order.pool, order.tenant_id)}
    assert rows["shopify"].last_error is not None
    assert "Invalid API key" in rows["shopify"].last_error
    assert rows["sendcloud"].last_error is None  # the label was made: its keys work
