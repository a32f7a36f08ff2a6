"""The checkout's delivery choice in the Sendcloud parcel, through v2 parcels and v3 shipments
(the order entity's ship step against PostgreSQL and the in-process simulators): the tenant's
method table and its fallback, a chosen service point, state codes, parcel dimensions, and
transient failures that end FAILED with the reason and the operator's retry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.handlers import order as handlers
from forma3d.handlers.order import Order
from forma3d.handlers.testing import stub_services
from forma3d.integrations.errors import TransientError
from forma3d.integrations.settings import SendcloudSettings
from forma3d.messaging.order import StartOrder
from forma3d.store import orders as store
from forma3d.store.integrations import load_integration, save_integration
from sandbox.server import serve_sandboxes
from sandbox.shopify import AddressSpec, LineItemSpec, OrderSpec
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config
from tests.forma3d.handlers.conftest import NOWHERE
from tests.forma3d.handlers.test_order import events, jobs, order_row, report
from tests.forma3d.handlers.test_order_shipping import retry, ship_message, shipment_of

pytestmark = pytest.mark.db

EXPRESS = {"checkout": "Express DPD", "shipping_method_id": 1317,
           "shipping_option_code": "dpd:home"}
PICKUP = {"checkout": "Service Point Delivery DHL", "shipping_method_id": 8030,
          "shipping_option_code": "dhl:servicepoint"}


@pytest.fixture(params=["v2", "v3"])
async def shop(request: pytest.FixtureRequest, db_pool: Pool,
               tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    """A tenant on Sendcloud v2 or v3 whose UPS method also ships to the United States."""
    config = sandbox_config(auto_print=False)
    config.sendcloud.status_interval = 10**7
    for method in config.sendcloud.shipping_methods:
        if method["id"] == 1319:
            method["countries"].append({"id": 99, "name": "United States", "iso_2": "US",
                                        "iso_3": "USA", "price": 24.0, "lead_time_hours": 96})
    running = await serve_sandboxes(config)
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config,
                           sendcloud_api=request.param)
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


async def settle(shop: Farm, **settings: Any) -> None:
    await shop.pool.execute("UPDATE tenants SET settings = settings || $2 WHERE id = $1",
                            shop.tenant_id, settings)


async def ready(shop: Farm, spec: OrderSpec) -> Order:
    """An order placed at the Shopify simulator as `spec` says, ingested and printed."""
    spec.line_items = spec.line_items or [LineItemSpec(sku="BENCHY-PLA-RED")]
    raw = shop.shopify.create_order(spec)
    async with shop.pool.acquire() as conn, conn.transaction():
        order_id, _ = await store.insert_order(conn, shop.tenant_id,
                                               ShopifyOrder.model_validate(raw))
    services, _ = stub_services(shop.pool)
    order = await handlers.load(services, str(order_id))
    await handlers.start(order, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    for job in await jobs(order):
        assert await report(order, job, "COMPLETED") == "applied"
    assert (await order_row(order))["status"] == "READY_FOR_FULFILLMENT"
    return order


def parcel_of(shop: Farm, parcel_id: int | None) -> dict[str, Any]:
    assert parcel_id is not None
    data: dict[str, Any] = shop.sandboxes.sandboxes.sendcloud.parcels[parcel_id].data
    return data


async def version(shop: Farm) -> str:
    settings = await load_integration(shop.pool, shop.tenant_id, SendcloudSettings)
    assert settings is not None
    return settings.api_version


async def test_the_checkout_method_arrives_in_the_parcel(shop: Farm) -> None:
    await settle(shop, shipping_methods=[EXPRESS])
    order = await ready(shop, OrderSpec(shipping_title="Express DPD"))
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    assert parcel_of(shop, shipment.parcel_id)["shipment"]["id"] == 1317
    v2 = await version(shop) == "v2"
    assert shipment.shipping_method == ("1317" if v2 else "dpd:home")
    [created] = await events(order, "shipment.created")
    assert created["shipping_method"] == shipment.shipping_method

    # A rate the table does not name ships with the integration's default (the account's
    # first method to the Netherlands: PostNL).
    other = await ready(shop, OrderSpec(shipping_title="Standard"))
    assert await handlers.ship(other, ship_message(other)) == "fulfilled"
    assert parcel_of(shop, (await shipment_of(other)).parcel_id)["shipment"]["id"] == 8


async def test_a_chosen_service_point_arrives_in_the_parcel(shop: Farm) -> None:
    await settle(shop, shipping_methods=[PICKUP])
    order = await ready(shop, OrderSpec(
        shipping_title="Service Point Delivery DHL",
        note_attributes=[{"name": "point_id", "value": "10875349"},
                         {"name": "point_post_number", "value": "1338"}]))
    delivery = (await store.get_order(order.pool, order.order_id)).delivery  # type: ignore[union-attr]
    assert delivery is not None and delivery.service_point_id == "10875349"
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    parcel = parcel_of(shop, shipment.parcel_id)
    assert str(parcel["to_service_point"]) == "10875349"
    assert parcel["shipment"]["id"] == 8030
    assert shipment.service_point_id == "10875349"
    if await version(shop) == "v2":
        assert parcel["to_post_number"] == "1338"  # v3 has no post number field

    # The pickup rate without a picked point: Sendcloud refuses, the shipment says why.
    lost = await ready(shop, OrderSpec(shipping_title="Service Point Delivery DHL"))
    assert await handlers.ship(lost, ship_message(lost)) == "parcel failed"
    failed = await shipment_of(lost)
    assert failed.status == "FAILED" and failed.error and "to_service_point" in failed.error


async def test_state_code_and_the_products_box_arrive_in_the_parcel(shop: Farm) -> None:
    await shop.pool.execute("UPDATE product_mappings SET packaging_cm = '{30, 20, 10.5}'"
                            " WHERE tenant_id = $1 AND sku = 'BENCHY-PLA-RED'", shop.tenant_id)
    await settle(shop, parcel_dimensions_cm=["25", "15", "5"])
    order = await ready(shop, OrderSpec(shipping_address=AddressSpec(
        address1="350 Fifth Avenue", city="New York", province="New York",
        province_code="NY", zip="10118", country="United States", country_code="US")))
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    parcel = parcel_of(shop, (await shipment_of(order)).parcel_id)
    assert parcel["to_state"] == "NY"
    assert (parcel["length"], parcel["width"], parcel["height"]) == ("30.00", "20.00", "10.50")

    # A product without a box: the tenant's default box.
    plain = await ready(shop, OrderSpec(line_items=[LineItemSpec(sku="VASE-SPIRAL-PLA-WHITE")]))
    assert await handlers.ship(plain, ship_message(plain)) == "fulfilled"
    parcel = parcel_of(shop, (await shipment_of(plain)).parcel_id)
    assert (parcel["length"], parcel["width"], parcel["height"]) == ("25.00", "15.00", "5.00")


async def test_a_failing_parcel_creation_is_retried_then_failed_with_its_reason(
        shop: Farm) -> None:
    await settle(shop, shipment_create_attempts=2)
    order = await ready(shop, OrderSpec())
    settings = await load_integration(order.pool, order.tenant_id, SendcloudSettings)
    assert settings is not None
    await save_integration(order.pool, order.tenant_id,
                           settings.model_copy(update={"base_url": NOWHERE}))
    with pytest.raises(TransientError):  # the outbox redelivers it with backoff
        await handlers.ship(order, ship_message(order))
    shipment = await shipment_of(order)
    assert shipment.status == "PENDING" and shipment.create_failures == 1
    assert shipment.error and "did not create" in shipment.error

    assert await handlers.ship(order, ship_message(order)) == "parcel failed"
    shipment = await shipment_of(order)
    assert shipment.status == "FAILED" and "2 times in a row" in (shipment.error or "")
    [failed] = await events(order, "shipment.status-changed")
    assert failed["new_status"] == "FAILED" and failed["reason"] == shipment.error
    assert f"POST /api/v1/orders/{order.order_id}/ship" in failed["action"]

    await save_integration(order.pool, order.tenant_id, settings)
    assert await retry(order) == "shipment restarted"
    assert await handlers.ship(order, ship_message(order)) == "fulfilled"
    shipment = await shipment_of(order)
    assert shipment.status == "LABEL_CREATED" and shipment.create_failures == 0
    assert shipment.error is None
