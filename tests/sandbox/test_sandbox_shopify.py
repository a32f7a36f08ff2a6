"""Shopify simulator through httpx: auth, call limits, page_info pagination, fulfilments, and
signed orders/* webhooks received on a loopback port."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sandbox_receiver import Receiver

from forma3d.integrations.signatures import verify_shopify
from sandbox.server import SandboxConfig, build_apps
from sandbox.shopify import LineItemSpec, ShopifySandbox

V = "/admin/api/2024-07"
REQUIRED_HEADERS = (
    "x-shopify-topic",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-api-version",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-shopify-triggered-at",
)


@pytest.fixture
async def shop() -> AsyncIterator[tuple[httpx.AsyncClient, ShopifySandbox]]:
    app, _, _ = build_apps(SandboxConfig(seed=3))
    sandbox: ShopifySandbox = app.state.sandbox
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://forma3d-sandbox.myshopify.com",
        headers={"X-Shopify-Access-Token": sandbox.config.access_token},
    ) as client:
        yield client, sandbox
    await sandbox.dispatcher.aclose()


def links(response: httpx.Response) -> dict[str, str]:
    found = re.findall(r'<([^>]+)>;\s*rel="?(\w+)"?', response.headers.get("link", ""))
    return {rel: url for url, rel in found}


async def test_auth_and_call_limit_header(shop: tuple[httpx.AsyncClient, ShopifySandbox]) -> None:
    client, _ = shop
    denied = await client.get(f"{V}/orders.json", headers={"X-Shopify-Access-Token": "nope"})
    assert denied.status_code == 401
    assert "Invalid API key or access token" in denied.json()["errors"]
    ok = await client.get(f"{V}/orders.json")
    assert ok.status_code == 200 and ok.json() == {"orders": []}
    assert re.fullmatch(r"\d+/40", ok.headers["x-shopify-shop-api-call-limit"])
    assert (await client.get("/admin/api/2024-05/orders.json")).status_code == 404


async def test_leaky_bucket_answers_429_with_retry_after(
    shop: tuple[httpx.AsyncClient, ShopifySandbox],
) -> None:
    client, sandbox = shop
    sandbox.bucket.capacity = 3
    sandbox.bucket.leak_rate = 1e-9  # nothing leaks during the test
    sandbox.bucket.reset()
    codes = [(await client.get(f"{V}/orders.json")).status_code for _ in range(3)]
    throttled = await client.get(f"{V}/orders.json")
    assert codes == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "2.0"
    assert throttled.headers["x-shopify-shop-api-call-limit"] == "3/3"
    assert throttled.json()["errors"].startswith("Exceeded 2 calls per second")


async def test_created_order_has_the_reference_fields(
    shop: tuple[httpx.AsyncClient, ShopifySandbox],
) -> None:
    client, _ = shop
    created = await client.post(
        "/_sandbox/orders",
        json={
            "line_items": [
                {
                    "sku": "BENCHY-PLA-RED",
                    "quantity": 2,
                    "price": "22.00",
                    "properties": {"Engraving": "Hi"},
                },
                {"sku": "GRID-CUSTOM-3x4", "quantity": 1, "price": "30.00"},
            ],
            "shipping_price": "5.00",
        },
    )
    assert created.status_code == 201
    order = created.json()["order"]
    for name in (
        "id",
        "admin_graphql_api_id",
        "name",
        "order_number",
        "email",
        "created_at",
        "currency",
        "total_price",
        "subtotal_price",
        "total_tax",
        "financial_status",
        "fulfillment_status",
        "cancelled_at",
        "cancel_reason",
        "line_items",
        "shipping_address",
        "billing_address",
        "customer",
        "shipping_lines",
    ):
        assert name in order
    assert order["subtotal_price"] == "74.00" and order["total_price"] == "79.00"
    line = order["line_items"][0]
    assert line["sku"] == "BENCHY-PLA-RED" and line["quantity"] == 2
    assert isinstance(line["variant_id"], int) and line["price"] == "22.00"
    assert line["properties"] == [{"name": "Engraving", "value": "Hi"}]
    assert order["shipping_address"]["country_code"] == "NL"
    fetched = await client.get(f"{V}/orders/{order['id']}.json", params={"fields": "id,name"})
    assert fetched.json() == {"order": {"id": order["id"], "name": order["name"]}}
    assert (await client.get(f"{V}/orders/1.json")).status_code == 404


async def test_page_info_pagination_forward_and_back(
    shop: tuple[httpx.AsyncClient, ShopifySandbox],
) -> None:
    client, sandbox = shop
    orders = [sandbox.create_order() for _ in range(7)]
    sandbox.cancel_order(orders[0]["id"])
    first = await client.get(f"{V}/orders.json", params={"status": "any", "limit": 3})
    assert [o["id"] for o in first.json()["orders"]] == [o["id"] for o in orders[::-1][:3]]
    assert set(links(first)) == {"next"}
    seen = [o["id"] for o in first.json()["orders"]]
    page = first
    while "next" in links(page):
        page = await client.get(links(page)["next"])
        assert page.status_code == 200
        seen += [o["id"] for o in page.json()["orders"]]
    assert seen == [o["id"] for o in orders[::-1]]
    back = await client.get(links(page)["previous"])
    assert [o["id"] for o in back.json()["orders"]] == seen[3:6]

    with_filter = await client.get(links(first)["next"] + "&status=any")
    assert with_filter.status_code == 400
    assert "cannot be passed when page_info is present" in json.dumps(with_filter.json())

    open_only = await client.get(f"{V}/orders.json", params={"limit": 250})
    assert orders[0]["id"] not in [o["id"] for o in open_only.json()["orders"]]
    assert "link" not in open_only.headers
    cancelled = await client.get(f"{V}/orders.json", params={"status": "cancelled"})
    assert [o["id"] for o in cancelled.json()["orders"]] == [orders[0]["id"]]
    later = await client.get(
        f"{V}/orders.json", params={"status": "any", "created_at_min": "2999-01-01T00:00:00Z"}
    )
    assert later.json()["orders"] == []
    assert (await client.get(f"{V}/orders.json", params={"limit": 251})).status_code == 400


async def test_fulfillment_orders_model(shop: tuple[httpx.AsyncClient, ShopifySandbox]) -> None:
    client, sandbox = shop
    order = sandbox.create_order()
    fos = (await client.get(f"{V}/orders/{order['id']}/fulfillment_orders.json")).json()
    fo = fos["fulfillment_orders"][0]
    assert fo["status"] == "open" and fo["supported_actions"] == ["create_fulfillment"]
    fo_line = fo["line_items"][0]
    assert fo_line["line_item_id"] == order["line_items"][0]["id"] != fo_line["id"]

    wrong = await client.post(
        f"{V}/fulfillments.json",
        json={
            "fulfillment": {
                "line_items_by_fulfillment_order": [
                    {
                        "fulfillment_order_id": fo["id"],
                        "fulfillment_order_line_items": [
                            {"id": fo_line["line_item_id"], "quantity": 1}
                        ],
                    }
                ]
            }
        },
    )
    assert wrong.status_code == 422
    missing = await client.post(f"{V}/fulfillments.json", json={})
    assert missing.status_code == 400
    assert missing.json() == {"errors": {"fulfillment": "Required parameter missing or invalid"}}

    created = await client.post(
        f"{V}/fulfillments.json",
        json={
            "fulfillment": {
                "line_items_by_fulfillment_order": [{"fulfillment_order_id": fo["id"]}],
                "tracking_info": {
                    "number": "3SYZXG132912330",
                    "url": "https://t.example/3S",
                    "company": "PostNL",
                },
                "notify_customer": True,
            }
        },
    )
    assert created.status_code == 201
    fulfillment = created.json()["fulfillment"]
    assert fulfillment["status"] == "success"
    assert fulfillment["tracking_numbers"] == ["3SYZXG132912330"]
    assert fulfillment["tracking_company"] == "PostNL"
    assert fulfillment["name"] == f"{order['name']}.1"
    again = (await client.get(f"{V}/orders/{order['id']}/fulfillment_orders.json")).json()
    assert again["fulfillment_orders"][0]["status"] == "closed"
    fetched = (await client.get(f"{V}/orders/{order['id']}.json")).json()["order"]
    assert fetched["fulfillment_status"] == "fulfilled"

    updated = await client.post(
        f"{V}/fulfillments/{fulfillment['id']}/update_tracking.json",
        json={
            "fulfillment": {
                "tracking_info": {"number": "NEW123", "company": "DHL"},
                "notify_customer": False,
            }
        },
    )
    assert updated.status_code == 200
    assert updated.json()["fulfillment"]["tracking_number"] == "NEW123"
    gone = await client.post(f"{V}/fulfillments/1/update_tracking.json", json={})
    assert gone.status_code == 404


async def test_order_webhooks_are_signed_with_all_headers(receiver: Receiver) -> None:
    config = SandboxConfig(seed=5)
    config.shopify.webhook_targets = [receiver.url("shopify")]
    app, _, _ = build_apps(config)
    sandbox: ShopifySandbox = app.state.sandbox
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.test"
    ) as client:
        order = (await client.post("/_sandbox/orders", json={})).json()["order"]
        cancelled = await client.post(
            f"/_sandbox/orders/{order['id']}/cancel", json={"reason": "customer"}
        )
        assert cancelled.json()["order"]["cancel_reason"] == "customer"
        twice = await client.post(f"/_sandbox/orders/{order['id']}/cancel", json={})
        assert twice.status_code == 409
    got = await receiver.wait_for("shopify", lambda r: len(r) >= 3)
    topics = [r.headers["x-shopify-topic"] for r in got]
    assert topics == ["orders/create", "orders/cancelled", "orders/updated"]
    secret = config.shopify.webhook_secret
    for delivery in got:
        assert all(name in delivery.headers for name in REQUIRED_HEADERS)
        assert verify_shopify(secret, delivery.body, delivery.headers["x-shopify-hmac-sha256"])
        assert delivery.headers["x-shopify-shop-domain"] == config.shopify.shop_domain
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", delivery.headers["x-shopify-triggered-at"]
        )
    body: dict[str, Any] = json.loads(got[1].body)
    assert body["id"] == order["id"] and body["cancelled_at"] is not None
    event_ids = {r.headers["x-shopify-event-id"] for r in got}
    assert len(event_ids) == 3
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.test"
    ) as client:
        log = await client.get("/_sandbox/webhooks/deliveries")
    deliveries = log.json()["deliveries"]
    assert [d["outcome"] for d in deliveries] == ["delivered"] * 3
    await sandbox.dispatcher.aclose()


async def test_order_stream_buys_from_the_configured_catalog() -> None:
    config = SandboxConfig(seed=9, speedup=1.0)
    config.shopify.catalog = [LineItemSpec(sku="GRID-CUSTOM-2x3", price="24.00")]
    app, _, _ = build_apps(config)
    sandbox: ShopifySandbox = app.state.sandbox
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://shop.test"
    ) as client:
        started = await client.post("/_sandbox/order_stream", json={"orders_per_hour": 60})
        assert started.json() == {"orders_per_hour": 60.0}
        for _ in range(10):
            sandbox.clock.advance(1800)  # ten half-hours at 60 orders per hour
            for _ in range(20):
                await asyncio.sleep(0)
        await client.post("/_sandbox/order_stream", json={"orders_per_hour": 0})
    count = len(sandbox.orders)
    assert 150 <= count <= 450  # 5 simulated hours at 60 per hour, Poisson
    assert {li["sku"] for o in sandbox.orders.values() for li in o["line_items"]} == {
        "GRID-CUSTOM-2x3"
    }
    await sandbox.aclose()


async def test_webhook_subscriptions_decide_who_gets_which_topic(receiver: Receiver) -> None:
    app, _, _ = build_apps(SandboxConfig(seed=6))
    sandbox: ShopifySandbox = app.state.sandbox
    token = {"X-Shopify-Access-Token": sandbox.config.access_token}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://shop.test", headers=token) as client:
        await client.post("/_sandbox/orders", json={})  # nobody subscribed: delivered nowhere
        created = await client.post(f"{V}/webhooks.json", json={"webhook": {
            "topic": "orders/cancelled", "address": receiver.url("subs"), "format": "json"}})
        assert created.status_code == 201
        hook = created.json()["webhook"]
        assert hook["api_version"] == sandbox.config.webhook_api_version
        again = await client.post(f"{V}/webhooks.json", json={"webhook": {
            "topic": "orders/cancelled", "address": receiver.url("subs")}})
        assert again.status_code == 422
        assert again.json() == {"errors": {"address": ["for this topic has already been taken"]}}
        wrong = await client.post(f"{V}/webhooks.json", json={"webhook": {
            "topic": "orders/update", "address": receiver.url("subs")}})
        assert "Invalid topic specified" in wrong.json()["errors"]["topic"][0]
        listed = await client.get(f"{V}/webhooks.json", params={"address": receiver.url("subs")})
        assert [h["id"] for h in listed.json()["webhooks"]] == [hook["id"]]
        order = (await client.post("/_sandbox/orders", json={})).json()["order"]
        await client.post(f"/_sandbox/orders/{order['id']}/cancel", json={})
        got = await receiver.wait_for("subs", lambda r: len(r) >= 1)
        assert [r.headers["x-shopify-topic"] for r in got] == ["orders/cancelled"]
        deleted = await client.delete(f"{V}/webhooks/{hook['id']}.json")
        assert deleted.status_code == 200 and deleted.json() == {}
        assert (await client.delete(f"{V}/webhooks/{hook['id']}.json")).status_code == 404
        state = (await client.get("/_sandbox/webhooks")).json()
        assert state["targets"] == []
        unauthorized = await client.get(f"{V}/webhooks.json",
                                        headers={"X-Shopify-Access-Token": "nope"})
        assert unauthorized.status_code == 401
    assert [d.topic for d in sandbox.dispatcher.log] == ["orders/cancelled"]
    await sandbox.dispatcher.aclose()
