"""Shopify Admin REST client: orders for backfill, fulfillment orders, fulfillments with tracking.

REST is legacy for public apps but supported for the custom apps a print farm installs; the
fulfillment-orders model is the only one Shopify still accepts for creating fulfillments.
"""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import Field

from forma3d.integrations.errors import (
    IntegrationError,
    RejectedError,
    TransientError,
    UnexpectedResponseError,
)
from forma3d.integrations.http import DEFAULT_TIMEOUT, ApiModel, BaseClient, Params
from forma3d.integrations.retry import RetryPolicy, Sleep, call_limit_delay

# The API version the reference names for the farm's webhook subscriptions; REST calls use the
# same one so webhook payloads and API answers share a shape. Configurable per client.
DEFAULT_API_VERSION = "2024-07"
MAX_PAGE_SIZE = 250
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"


class LineItem(ApiModel):
    id: int
    sku: str | None = None
    title: str = ""
    variant_title: str | None = None
    quantity: int = 0
    fulfillable_quantity: int | None = None
    product_id: int | None = None
    variant_id: int | None = None
    properties: list[dict[str, Any]] = Field(default_factory=list)


class Order(ApiModel):
    id: int
    name: str = ""
    email: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    currency: str | None = None
    total_price: Decimal | None = None
    financial_status: str | None = None
    fulfillment_status: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)
    shipping_address: dict[str, Any] | None = None
    fulfillments: list[dict[str, Any]] = Field(default_factory=list)


class FulfillmentOrderLineItem(ApiModel):
    """`id` is the fulfillment-order line item id, which fulfillments need (not `line_item_id`)."""

    id: int
    line_item_id: int
    quantity: int = 0
    fulfillable_quantity: int = 0
    variant_id: int | None = None


class FulfillmentOrder(ApiModel):
    id: int
    order_id: int
    status: str
    assigned_location_id: int | None = None
    supported_actions: list[str] = Field(default_factory=list)
    line_items: list[FulfillmentOrderLineItem] = Field(default_factory=list)


class Fulfillment(ApiModel):
    id: int
    order_id: int | None = None
    status: str | None = None
    name: str | None = None
    tracking_company: str | None = None
    tracking_number: str | None = None
    tracking_numbers: list[str] = Field(default_factory=list)
    tracking_url: str | None = None
    tracking_urls: list[str] = Field(default_factory=list)


class FulfillmentEvent(ApiModel):
    id: int
    fulfillment_id: int | None = None
    order_id: int | None = None
    status: str
    happened_at: str | None = None


class Webhook(ApiModel):
    """A webhook subscription of this app at the shop."""

    id: int
    topic: str
    address: str


@dataclass(frozen=True)
class TrackingInfo:
    number: str
    url: str | None = None
    company: str | None = None

    def to_api(self) -> dict[str, str]:
        body = {"number": self.number, "url": self.url, "company": self.company}
        return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class FulfillmentOrderLines:
    """What to fulfil from one fulfillment order: {fulfillment-order line item id: quantity}, or
    None for everything that remains on it."""

    fulfillment_order_id: int
    quantities: dict[int, int] | None = None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {"fulfillment_order_id": self.fulfillment_order_id}
        if self.quantities is not None:
            body["fulfillment_order_line_items"] = [
                {"id": item_id, "quantity": qty} for item_id, qty in self.quantities.items()
            ]
        return body


@dataclass(frozen=True)
class OrderPage:
    """One page of the orders list; keep `next_page_info` to resume a backfill later."""

    orders: list[Order]
    next_page_info: str | None


_LINK_PART = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL = re.compile(r"""rel\s*=\s*"?([^";,\s]+)"?""", re.IGNORECASE)


def parse_link_header(value: str | None) -> dict[str, str]:
    """{rel: url} from a Link header; accepts `rel="next"` and the unquoted `rel=next`."""
    links: dict[str, str] = {}
    for match in _LINK_PART.finditer(value or ""):
        url, params = match.group(1).strip(), match.group(2)
        for rel in _REL.findall(params):
            links.setdefault(rel.lower(), url)
    return links


def page_info_of(url: str) -> tuple[str | None, int | None]:
    """page_info and limit from a Link URL; the rest of it is rebuilt against our base URL."""
    query = parse_qs(urlsplit(url).query)
    page_info = query.get("page_info", [None])[0]
    limit_text = query.get("limit", [None])[0]
    limit = int(limit_text) if limit_text and limit_text.isdigit() else None
    return page_info, limit


def _time_param(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


class ShopifyClient(BaseClient):
    """One shop's Admin REST API. `base_url` replaces `https://{shop_domain}` (e.g. the sandbox)."""

    service: ClassVar[str] = "shopify"

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        api_version: str = DEFAULT_API_VERSION,
        base_url: str | None = None,
        leak_rate: float | None = None,
        bucket_headroom: float = 0.8,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = (base_url or f"https://{shop_domain}").rstrip("/")
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.leak_rate = leak_rate
        self.bucket_headroom = bucket_headroom
        super().__init__(
            f"{root}/admin/api/{api_version}/",
            headers={ACCESS_TOKEN_HEADER: access_token, "Accept": "application/json"},
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            rng=rng,
            transport=transport,
        )

    def pacing_delay(self, response: httpx.Response) -> float:
        return call_limit_delay(
            response.headers.get(CALL_LIMIT_HEADER),
            leak_rate=self.leak_rate,
            headroom=self.bucket_headroom,
        )

    # -- orders

    async def get_order(self, order_id: int) -> Order:
        body = self.json_object(await self.request("GET", f"orders/{order_id}.json"))
        return self.parse(Order, body.get("order"))

    async def list_order_pages(
        self,
        *,
        status: str = "any",
        created_at_min: datetime | str | None = None,
        created_at_max: datetime | str | None = None,
        updated_at_min: datetime | str | None = None,
        updated_at_max: datetime | str | None = None,
        limit: int = MAX_PAGE_SIZE,
        fields: Sequence[str] | None = None,
        page_info: str | None = None,
    ) -> AsyncIterator[OrderPage]:
        """Pages of orders for backfill, following Link rel="next".

        Follow-up requests carry only page_info, limit and fields: Shopify answers 400 when filters
        are repeated next to page_info. Pass `page_info` to resume from a saved page; `fields`
        always includes `id`.
        """
        # `id` is what our models key on; Shopify returns only the fields asked for.
        field_list = ",".join(dict.fromkeys(["id", *fields])) if fields else None
        params: Params
        if page_info is None:
            params = {
                "status": status,
                "created_at_min": _time_param(created_at_min),
                "created_at_max": _time_param(created_at_max),
                "updated_at_min": _time_param(updated_at_min),
                "updated_at_max": _time_param(updated_at_max),
                "limit": min(limit, MAX_PAGE_SIZE),
                "fields": field_list,
            }
        else:
            params = {
                "page_info": page_info,
                "limit": min(limit, MAX_PAGE_SIZE),
                "fields": field_list,
            }
        while True:
            response = await self.request("GET", "orders.json", params=params)
            body = self.json_object(response)
            orders = [self.parse(Order, item) for item in body.get("orders") or []]
            next_url = parse_link_header(response.headers.get("Link")).get("next")
            next_info, next_limit = page_info_of(next_url) if next_url else (None, None)
            yield OrderPage(orders=orders, next_page_info=next_info)
            if not next_info:
                return
            params = {"page_info": next_info, "limit": next_limit or limit, "fields": field_list}

    async def iter_orders(self, **filters: Any) -> AsyncIterator[Order]:
        """Every order matching the filters of `list_order_pages`, one at a time."""
        async for page in self.list_order_pages(**filters):
            for order in page.orders:
                yield order

    # -- fulfillment

    async def get_fulfillment_orders(self, order_id: int) -> list[FulfillmentOrder]:
        response = await self.request("GET", f"orders/{order_id}/fulfillment_orders.json")
        body = self.json_object(response)
        return [self.parse(FulfillmentOrder, fo) for fo in body.get("fulfillment_orders") or []]

    async def create_fulfillment(
        self,
        order_id: int,
        lines: Sequence[FulfillmentOrderLines],
        tracking: TrackingInfo | None = None,
        *,
        notify_customer: bool = True,
        message: str | None = None,
    ) -> Fulfillment:
        """Fulfil fulfillment-order lines with tracking; safe to call again after a crash.

        Shopify has no idempotency key here, so after an ambiguous failure (or a 422 that may mean
        "already fulfilled" by our own earlier call) we look for a fulfillment of the order with
        the same tracking number before creating again. Without tracking there is nothing to
        look for, and the ambiguous error is raised for the caller to check.
        """
        fulfillment: dict[str, Any] = {
            "line_items_by_fulfillment_order": [line.to_api() for line in lines],
            "notify_customer": notify_customer,
        }
        if tracking is not None:
            fulfillment["tracking_info"] = tracking.to_api()
        if message:
            fulfillment["message"] = message
        maybe_created = False

        async def attempt() -> Fulfillment:
            nonlocal maybe_created
            if maybe_created and tracking is not None:
                existing = await self.find_fulfillment(order_id, tracking.number)
                if existing is not None:
                    return existing
            try:
                response = await self.send_once(
                    "POST", "fulfillments.json", json={"fulfillment": fulfillment}
                )
            except TransientError as err:
                maybe_created = maybe_created or err.ambiguous
                raise
            except RejectedError:
                if tracking is not None:
                    existing = await self.find_fulfillment(order_id, tracking.number)
                    if existing is not None:
                        return existing
                raise
            return self.parse(Fulfillment, self.json_object(response).get("fulfillment"))

        def decide(err: IntegrationError) -> bool:
            return err.retryable and (not err.ambiguous or tracking is not None)

        return await self.retrying(attempt, should_retry=decide)

    async def find_fulfillment(self, order_id: int, tracking_number: str) -> Fulfillment | None:
        """The order's live fulfillment carrying this tracking number, if any (one GET, no retry
        loop of its own: it runs inside the caller's)."""
        response = await self.send_once("GET", f"orders/{order_id}.json")
        order = self.parse(Order, self.json_object(response).get("order"))
        for raw in order.fulfillments:
            numbers = set(raw.get("tracking_numbers") or []) | {raw.get("tracking_number")}
            if tracking_number in numbers and raw.get("status") not in ("cancelled", "error"):
                return self.parse(Fulfillment, raw)
        return None

    async def update_tracking(
        self, fulfillment_id: int, tracking: TrackingInfo, *, notify_customer: bool = True
    ) -> Fulfillment:
        """Replace a fulfillment's tracking; setting the same values twice is harmless."""
        body = {
            "fulfillment": {"tracking_info": tracking.to_api(), "notify_customer": notify_customer}
        }
        response = await self.request(
            "POST", f"fulfillments/{fulfillment_id}/update_tracking.json", json=body
        )
        return self.parse(Fulfillment, self.json_object(response).get("fulfillment"))

    async def create_fulfillment_event(self, order_id: int, fulfillment_id: int, status: str,
                                       ) -> FulfillmentEvent:
        """Set the fulfilment's shipment status (`in_transit`, `delivered`, ...) with a
        fulfillment event; Shopify keeps every event, so the caller sends each status once."""
        response = await self.request(
            "POST", f"orders/{order_id}/fulfillments/{fulfillment_id}/events.json",
            json={"event": {"status": status}}, idempotent=False)
        return self.parse(FulfillmentEvent, self.json_object(response).get("fulfillment_event"))

    # -- the shop and its webhook subscriptions (connecting a shop)

    async def get_shop(self) -> dict[str, Any]:
        """`shop.json`: the cheap read that proves the domain and the access token."""
        shop = self.json_object(await self.request("GET", "shop.json")).get("shop")
        if not isinstance(shop, dict):
            raise UnexpectedResponseError(self.service, "shop.json without a shop", body=shop)
        return shop

    async def list_webhooks(self, *, address: str | None = None) -> list[Webhook]:
        body = self.json_object(await self.request(
            "GET", "webhooks.json", params={"address": address, "limit": MAX_PAGE_SIZE}))
        return [self.parse(Webhook, raw) for raw in body.get("webhooks") or []]

    async def create_webhook(self, topic: str, address: str) -> Webhook | None:
        """Subscribe `address` to `topic`; None when Shopify already has that subscription
        (its 422 "for this topic has already been taken")."""
        payload = {"webhook": {"topic": topic, "address": address, "format": "json"}}
        try:
            response = await self.request("POST", "webhooks.json", json=payload,
                                          idempotent=False)
        except RejectedError as error:
            if "already been taken" in error.message:
                return None
            raise
        return self.parse(Webhook, self.json_object(response).get("webhook"))

    async def delete_webhook(self, webhook_id: int) -> None:
        await self.request("DELETE", f"webhooks/{webhook_id}.json", ok_statuses=(404,))
