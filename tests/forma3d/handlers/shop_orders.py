"""Orders for handler tests: placed in the Shopify simulator, ingested, loaded as the order
entity's state (and started), the way the tenant and order entities would."""

from __future__ import annotations

from collections.abc import Iterable

from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.handlers import order as orders
from forma3d.handlers.order import Order
from forma3d.handlers.testing import stub_services
from forma3d.messaging.order import StartOrder
from forma3d.store import orders as store
from sandbox.shopify import LineItemSpec, OrderSpec
from tests.e2e.conftest import Farm


async def new_order(shop: Farm, lines: Iterable[tuple[str, int]]) -> Order:
    raw = shop.shopify.create_order(OrderSpec(line_items=[
        LineItemSpec(sku=sku, quantity=qty) for sku, qty in lines]))
    async with shop.pool.acquire() as conn, conn.transaction():
        order_id, _ = await store.insert_order(conn, shop.tenant_id,
                                               ShopifyOrder.model_validate(raw))
    services, _ = stub_services(shop.pool)
    return await orders.load(services, str(order_id))


async def started(shop: Farm, lines: Iterable[tuple[str, int]]) -> Order:
    order = await new_order(shop, lines)
    await orders.start(order, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    return order
