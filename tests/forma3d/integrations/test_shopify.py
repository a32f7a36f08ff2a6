"""ShopifyClient against a small Starlette app serving the reference's documented payloads."""

from __future__ import annotations

import copy
import json
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.integrations.errors import AuthenticationError, RejectedError, TransientError
from forma3d.integrations.retry import RetryPolicy
from forma3d.integrations.shopify import (
    DEFAULT_API_VERSION,
    FulfillmentOrderLines,
    ShopifyClient,
    TrackingInfo,
    parse_link_header,
)
from tests.forma3d.integrations.transports import DropAnswer

TOKEN = "shpat_test"
PREFIX = f"/admin/api/{DEFAULT_API_VERSION}"

# Reference 1.2 (trimmed to the documented fields we read).
ORDER: dict[str, Any] = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "name": "#1001",
    "order_number": 1001,
    "email": "jon@example.com",
    "created_at": "2024-05-01T10:00:00-04:00",
    "updated_at": "2024-05-01T10:05:00-04:00",
    "currency": "EUR",
    "total_price": "49.00",
    "financial_status": "paid",
    "fulfillment_status": None,
    "cancelled_at": None,
    "cancel_reason": None,
    "line_items": [
        {
            "id": 466157049,
            "product_id": 632910392,
            "variant_id": 39072856,
            "sku": "BENCHY-PLA-RED",
            "title": "3D Benchy",
            "variant_title": "Red / PLA",
            "quantity": 2,
            "fulfillable_quantity": 2,
            "price": "22.00",
            "properties": [{"name": "Engraving", "value": "Happy Birthday"}],
        }
    ],
    "shipping_address": {"address1": "Stadhuisplein 10", "city": "Eindhoven", "zip": "5611 EM"},
    "fulfillments": [],
}

# Reference 1.4.
FULFILLMENT_ORDER: dict[str, Any] = {
    "id": 2558888935587,
    "shop_id": 49144037539,
    "order_id": 2772506476707,
    "assigned_location_id": 55896015011,
    "fulfillment_service_handle": "manual",
    "request_status": "unsubmitted",
    "status": "open",
    "supported_actions": ["create_fulfillment"],
    "destination": {"address1": "...", "city": "...", "zip": "..."},
    "line_items": [
        {
            "id": 7118028439715,
            "shop_id": 49144037539,
            "fulfillment_order_id": 2558888935587,
            "quantity": 1,
            "line_item_id": 6037638185123,
            "inventory_item_id": 38440146567331,
            "fulfillable_quantity": 1,
            "variant_id": 36317227843747,
        }
    ],
    "fulfill_at": None,
    "fulfillment_holds": [],
    "merchant_requests": [],
}


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeShopify:
    """Just enough of Shopify's REST behaviour to pin the documented contract."""

    def __init__(self) -> None:
        self.orders = {
            n: {**copy.deepcopy(ORDER), "id": n, "name": f"#{n}"} for n in range(1001, 1006)
        }
        self.orders[ORDER["id"]] = copy.deepcopy(ORDER)
        self.requests: list[tuple[str, str, str]] = []
        self.posted: list[dict[str, Any]] = []
        self.call_limit = "1/40"
        self.throttle_next = 0
        self.quoted_rel = True

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(f"{PREFIX}/orders.json", self.list_orders),
                Route(f"{PREFIX}/orders/{{order_id:int}}.json", self.get_order),
                Route(
                    f"{PREFIX}/orders/{{order_id:int}}/fulfillment_orders.json",
                    self.fulfillment_orders,
                ),
                Route(f"{PREFIX}/fulfillments.json", self.create_fulfillment, methods=["POST"]),
                Route(
                    f"{PREFIX}/fulfillments/{{fid:int}}/update_tracking.json",
                    self.update_tracking,
                    methods=["POST"],
                ),
            ]
        )

    def reply(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        limit = {"X-Shopify-Shop-Api-Call-Limit": self.call_limit}
        return JSONResponse(body, status_code=status, headers={**limit, **(headers or {})})

    def gate(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path, request.url.query))
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return self.reply({"errors": "[API] Invalid API key or access token"}, 401)
        if self.throttle_next:
            self.throttle_next -= 1
            return self.reply(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates "
                    "to resume uninterrupted service."
                },
                429,
                {"Retry-After": "2.0"},
            )
        return None

    async def list_orders(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        params = dict(request.query_params)
        limit = int(params.get("limit", 50))
        ids = sorted(self.orders)
        if "page_info" in params:
            extra = set(params) - {"page_info", "limit", "fields"}
            if extra:
                message = f"{sorted(extra)[0]} cannot be passed when page_info is present"
                return self.reply({"errors": {"page_info": message}}, 400)
            start = int(params["page_info"].removeprefix("cur"))
        else:
            assert params.get("status") == "any"
            start = 0
        page = ids[start : start + limit]
        headers = {}
        rel = '"next"' if self.quoted_rel else "next"
        if start + limit < len(ids):
            query = f"limit={limit}&page_info=cur{start + limit}"
            url = f"https://x.myshopify.com{PREFIX}/orders.json?{query}"
            prev = f'<https://x.myshopify.com{PREFIX}/orders.json?page_info=back>; rel="previous"'
            headers["Link"] = f"{prev}, <{url}>; rel={rel}"
        return self.reply({"orders": [self.orders[i] for i in page]}, headers=headers)

    async def get_order(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        order = self.orders.get(request.path_params["order_id"])
        if order is None:
            return self.reply({"errors": "Not Found"}, 404)
        return self.reply({"order": order})

    async def fulfillment_orders(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        return self.reply({"fulfillment_orders": [FULFILLMENT_ORDER]})

    async def create_fulfillment(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        body = json.loads(await request.body())
        self.posted.append(body)
        data = body.get("fulfillment") or {}
        groups = data.get("line_items_by_fulfillment_order")
        if not groups:
            return self.reply(
                {"errors": {"fulfillment": "Required parameter missing or invalid"}}, 400
            )
        order = self.orders[ORDER["id"]]
        if order["fulfillments"]:
            return self.reply({"errors": ["Fulfillment order is already fulfilled"]}, 422)
        tracking = data.get("tracking_info") or {}
        fulfillment = {
            "id": 255858046,
            "order_id": order["id"],
            "status": "success",
            "service": "manual",
            "name": "#1001.1",
            "tracking_company": tracking.get("company"),
            "tracking_number": tracking.get("number"),
            "tracking_numbers": [tracking["number"]] if tracking.get("number") else [],
            "tracking_url": tracking.get("url"),
            "tracking_urls": [tracking["url"]] if tracking.get("url") else [],
            "shipment_status": None,
            "line_items": [],
        }
        order["fulfillments"].append(fulfillment)
        return self.reply({"fulfillment": fulfillment}, 201)

    async def update_tracking(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        body = json.loads(await request.body())
        self.posted.append(body)
        tracking = body["fulfillment"]["tracking_info"]
        fulfillment = {
            "id": request.path_params["fid"],
            "status": "success",
            "tracking_company": tracking.get("company"),
            "tracking_number": tracking["number"],
            "tracking_numbers": [tracking["number"]],
            "tracking_url": tracking.get("url"),
        }
        return self.reply({"fulfillment": fulfillment})


@pytest.fixture
def fake() -> FakeShopify:
    return FakeShopify()


def client_for(
    fake: FakeShopify, sleep: FakeSleep, **kwargs: Any
) -> tuple[ShopifyClient, DropAnswer]:
    transport = DropAnswer(httpx.ASGITransport(app=fake.app()))
    client = ShopifyClient(
        "x.myshopify.com",
        kwargs.pop("token", TOKEN),
        base_url="http://shopify.test",
        transport=transport,
        sleep=sleep,
        rng=random.Random(1),
        retry=RetryPolicy(max_attempts=4),
        **kwargs,
    )
    return client, transport


async def test_get_order_parses_documented_payload(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    async with client:
        order = await client.get_order(ORDER["id"])
    assert order.id == 820982911946154508
    assert order.name == "#1001"
    assert order.total_price == Decimal("49.00")
    assert order.financial_status == "paid" and order.fulfillment_status is None
    assert order.created_at is not None and order.created_at.utcoffset() is not None
    item = order.line_items[0]
    assert (item.id, item.sku, item.quantity, item.variant_id) == (
        466157049,
        "BENCHY-PLA-RED",
        2,
        39072856,
    )
    assert item.properties == [{"name": "Engraving", "value": "Happy Birthday"}]
    assert item.raw["price"] == "22.00"
    assert order.raw["admin_graphql_api_id"] == "gid://shopify/Order/820982911946154508"
    method, path, _ = fake.requests[-1]
    assert (method, path) == ("GET", f"{PREFIX}/orders/{ORDER['id']}.json")


@pytest.mark.parametrize("quoted", [True, False])
async def test_backfill_follows_link_page_info_without_repeating_filters(
    fake: FakeShopify, quoted: bool
) -> None:
    fake.quoted_rel = quoted
    client, _ = client_for(fake, FakeSleep())
    pages = []
    async with client:
        async for page in client.list_order_pages(
            created_at_min="2024-05-01T00:00:00Z", updated_at_min="2024-05-01T00:00:00Z", limit=2
        ):
            pages.append(page)
    assert [len(p.orders) for p in pages] == [2, 2, 2]
    assert [p.next_page_info for p in pages] == ["cur2", "cur4", None]
    first_query = fake.requests[0][2]
    assert "status=any" in first_query and "created_at_min=2024-05-01" in first_query
    assert "updated_at_min=2024-05-01" in first_query
    assert all("status" not in query for _, _, query in fake.requests[1:])


async def test_backfill_resumes_from_saved_page_info(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    async with client:
        ids = [o.id async for o in client.iter_orders(page_info="cur4", limit=2)]
    assert ids == sorted(fake.orders)[4:]


def test_link_header_parsing() -> None:
    header = (
        '<https://s.myshopify.com/admin/api/2024-07/orders.json?page_info=xyz>; rel="previous", '
        "<https://s.myshopify.com/admin/api/2024-07/orders.json?limit=3&page_info=abc>; rel=next"
    )
    links = parse_link_header(header)
    assert links["next"].endswith("limit=3&page_info=abc")
    assert links["previous"].endswith("page_info=xyz")
    assert parse_link_header(None) == {}


async def test_fulfillment_orders_use_fulfillment_order_line_item_ids(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    async with client:
        (fo,) = await client.get_fulfillment_orders(2772506476707)
    assert (fo.id, fo.order_id, fo.status) == (2558888935587, 2772506476707, "open")
    assert fo.line_items[0].id == 7118028439715
    assert fo.line_items[0].line_item_id == 6037638185123
    assert fo.supported_actions == ["create_fulfillment"]


async def test_create_fulfillment_sends_documented_body(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    tracking = TrackingInfo("3SYZXG132912330", "https://t.example/3S", "PostNL")
    async with client:
        fulfillment = await client.create_fulfillment(
            ORDER["id"],
            [FulfillmentOrderLines(2558888935587, {7118028439715: 1})],
            tracking,
            notify_customer=True,
        )
    assert fake.posted == [
        {
            "fulfillment": {
                "line_items_by_fulfillment_order": [
                    {
                        "fulfillment_order_id": 2558888935587,
                        "fulfillment_order_line_items": [{"id": 7118028439715, "quantity": 1}],
                    }
                ],
                "notify_customer": True,
                "tracking_info": {
                    "number": "3SYZXG132912330",
                    "url": "https://t.example/3S",
                    "company": "PostNL",
                },
            }
        }
    ]
    assert fulfillment.id == 255858046 and fulfillment.status == "success"
    assert fulfillment.tracking_number == "3SYZXG132912330"
    assert fulfillment.tracking_company == "PostNL"


async def test_whole_fulfillment_order_omits_line_items(fake: FakeShopify) -> None:
    assert FulfillmentOrderLines(5).to_api() == {"fulfillment_order_id": 5}


async def test_lost_answer_does_not_create_a_second_fulfillment(fake: FakeShopify) -> None:
    client, transport = client_for(fake, FakeSleep())
    transport.drop_next_post = True
    async with client:
        fulfillment = await client.create_fulfillment(
            ORDER["id"], [FulfillmentOrderLines(2558888935587)], TrackingInfo("3SYZ")
        )
    assert len(fake.posted) == 1
    assert fulfillment.id == 255858046 and fulfillment.tracking_number == "3SYZ"


async def test_create_after_crash_finds_the_existing_fulfillment(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    lines = [FulfillmentOrderLines(2558888935587)]
    async with client:
        first = await client.create_fulfillment(ORDER["id"], lines, TrackingInfo("3SYZ"))
        again = await client.create_fulfillment(ORDER["id"], lines, TrackingInfo("3SYZ"))
        with pytest.raises(RejectedError) as info:
            await client.create_fulfillment(ORDER["id"], lines, TrackingInfo("OTHER"))
    assert again.id == first.id
    assert info.value.status == 422
    assert "already fulfilled" in info.value.message


async def test_lost_answer_without_tracking_is_left_to_the_caller(fake: FakeShopify) -> None:
    client, transport = client_for(fake, FakeSleep())
    transport.drop_next_post = True
    async with client:
        with pytest.raises(TransientError) as info:
            await client.create_fulfillment(ORDER["id"], [FulfillmentOrderLines(2558888935587)])
    assert info.value.ambiguous
    assert len(fake.posted) == 1


async def test_update_tracking(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    async with client:
        fulfillment = await client.update_tracking(
            255858046, TrackingInfo("NEW1", company="DHL"), notify_customer=False
        )
    assert fake.posted[-1] == {
        "fulfillment": {
            "tracking_info": {"number": "NEW1", "company": "DHL"},
            "notify_customer": False,
        }
    }
    assert fake.requests[-1][1] == f"{PREFIX}/fulfillments/255858046/update_tracking.json"
    assert fulfillment.tracking_number == "NEW1"


async def test_429_honours_retry_after(fake: FakeShopify) -> None:
    sleep = FakeSleep()
    fake.throttle_next = 2
    client, _ = client_for(fake, sleep)
    async with client:
        order = await client.get_order(ORDER["id"])
    assert order.id == ORDER["id"]
    assert sleep.calls == [2.0, 2.0]


async def test_nearly_full_bucket_slows_the_next_call(fake: FakeShopify) -> None:
    sleep = FakeSleep()
    client, _ = client_for(fake, sleep)
    async with client:
        fake.call_limit = "38/40"
        await client.get_order(ORDER["id"])
        assert sleep.calls == []  # the pause is taken before the next call, not after this one
        fake.call_limit = "2/40"
        await client.get_order(ORDER["id"])
        await client.get_order(ORDER["id"])
    assert sleep.calls == [3.0]


async def test_bad_token_is_permanent(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep(), token="wrong")
    async with client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_order(ORDER["id"])
    assert info.value.status == 401 and info.value.service == "shopify"
    assert "Invalid API key" in info.value.message


async def test_throttled_answer_waits_retry_after_only(fake: FakeShopify) -> None:
    sleep = FakeSleep()
    fake.call_limit = "40/40"
    fake.throttle_next = 1
    client, _ = client_for(fake, sleep)
    async with client:
        await client.get_order(ORDER["id"])
    assert sleep.calls == [2.0]  # no extra bucket pause stacked on the 429's Retry-After


async def test_fields_always_include_id(fake: FakeShopify) -> None:
    client, _ = client_for(fake, FakeSleep())
    async with client:
        async for _ in client.list_order_pages(fields=["name", "line_items"], limit=250):
            pass
    assert "fields=id%2Cname%2Cline_items" in fake.requests[0][2]
