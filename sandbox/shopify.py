"""Shopify simulator: Admin REST orders and fulfilments, and signed ``orders/*`` webhooks.

Shapes follow shared/reference/external-apis.md section 1: orders as in 1.2, the
fulfillment-orders model of 1.4, ``page_info`` Link pagination of 1.5 and the leaky bucket of 1.6.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import random
import re
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.integrations.signatures import SHOPIFY_HMAC_HEADER, shopify_signature
from sandbox.clock import SimClock
from sandbox.control import control_routes, read_json
from sandbox.ratelimit import LeakyBucket
from sandbox.webhooks import WebhookDispatcher

API_VERSION_RE = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
CANCEL_REASONS = ("customer", "fraud", "inventory", "declined", "other", "staff")
ORDER_STATUSES = ("open", "closed", "cancelled", "any")
# Shopify's 8 retries over about 4 hours (changelog 2024-09-10), in simulated seconds.
SHOPIFY_RETRY_DELAYS = [60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 7200.0]
# Topics a subscription may name (the store's app holds read_orders and read_fulfillments).
WEBHOOK_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled",
                  "orders/fulfilled", "orders/partially_fulfilled", "orders/edited",
                  "orders/delete", "refunds/create", "fulfillments/create",
                  "fulfillments/update", "fulfillment_events/create", "app/uninstalled")
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
THROTTLED = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted "
    "service."
)


# Shopify's FulfillmentEventStatus values, lower-cased as REST takes them.
FULFILLMENT_EVENT_STATUSES = frozenset({
    "label_printed", "label_purchased", "attempted_delivery", "ready_for_pickup", "confirmed",
    "in_transit", "out_for_delivery", "delivered", "failure", "delayed", "carrier_picked_up",
    "picked_up",
})


class LineItemSpec(BaseModel):
    sku: str
    quantity: int = Field(default=1, ge=1)
    title: str | None = None
    variant_title: str | None = None
    price: str = "19.95"
    grams: int = 150
    variant_id: int | None = None
    product_id: int | None = None
    properties: dict[str, str] | list[dict[str, str]] = Field(default_factory=list)
    requires_shipping: bool = True  # False: a gift card, shipping protection...


class ShopifyConfig(BaseModel):
    """One simulated store."""

    shop_domain: str = "forma3d-sandbox.myshopify.com"
    access_token: str = "shpat_sandbox_token"
    webhook_secret: str = "shopify-sandbox-secret"
    webhook_api_version: str = "2024-07"
    # Addresses subscribed to every topic before the simulation starts (simulator tests); an
    # app subscribes through the Admin API (`webhooks.json`), and only subscribers get webhooks.
    webhook_targets: list[str] = Field(default_factory=list)
    webhook_topics: list[str] | None = None  # None: every topic
    loss_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_delays: list[float] = Field(default_factory=lambda: list(SHOPIFY_RETRY_DELAYS))
    bucket_size: int = 40
    leak_rate: float = 2.0
    currency: str = "EUR"
    location_id: int = 55896015011
    # What random orders buy (None: a small built-in catalogue); use mapped SKUs in demos.
    catalog: list[LineItemSpec] | None = None
    orders_per_hour: float = 0.0  # simulated orders arriving on their own (demo, load tests)


class AddressSpec(BaseModel):
    first_name: str = "Bob"
    last_name: str = "Norman"
    company: str | None = None
    address1: str = "Stadhuisplein 10"
    address2: str = ""
    city: str = "Eindhoven"
    province: str | None = None
    province_code: str | None = None
    zip: str = "5611 EM"
    country: str = "Netherlands"
    country_code: str = "NL"
    phone: str | None = "+31612345678"


class OrderSpec(BaseModel):
    """What a simulated customer buys; everything omitted gets a realistic default."""

    line_items: list[LineItemSpec] = Field(default_factory=list)
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    shipping_address: AddressSpec | None = None
    billing_address: AddressSpec | None = None
    shipping_price: str = "5.95"
    shipping_title: str = "Standard"
    financial_status: str = "paid"
    currency: str | None = None
    note: str | None = None
    tags: str = ""
    note_attributes: list[dict[str, str]] = Field(default_factory=list)
    test: bool = False


FINANCIAL_STATUSES = ("pending", "authorized", "partially_paid", "paid", "partially_refunded",
                      "refunded", "voided", "expired")
CATALOG = (
    ("BENCHY-PLA-RED", "3D Benchy", "Red / PLA", "12.50", 35),
    ("VASE-SPIRAL-PLA-WHITE", "Spiral Vase", "White / PLA", "24.00", 180),
    ("GRID-BIN-2X3-PETG-BLACK", "Gridfinity Bin 2x3", "Black / PETG", "8.95", 60),
    ("PLANTER-HEX-PLA-GREEN", "Hex Planter", "Green / PLA", "17.50", 140),
)
FIRST_NAMES = ("Anna", "Bram", "Chloe", "Daan", "Eva", "Finn", "Lotte", "Sem")
LAST_NAMES = ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder")


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ShopifySandbox:
    """In-memory store state; creating or cancelling orders sends webhooks like Shopify does."""

    def __init__(self, config: ShopifyConfig, clock: SimClock, seed: int = 0) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(f"{seed}:shopify")
        self.dispatcher = WebhookDispatcher(
            "shopify",
            clock,
            loss_rate=config.loss_rate,
            seed=seed,
            retry_delays=config.retry_delays,
            connect_timeout=1.0,
            timeout=5.0,
        )
        self.targets = list(config.webhook_targets)
        self.subscriptions: dict[int, dict[str, Any]] = {}
        self._subscription_ids = itertools.count(4759306)
        self.bucket = LeakyBucket(config.bucket_size, config.leak_rate)
        self.orders: dict[int, dict[str, Any]] = {}
        self.fulfillment_orders: dict[int, dict[str, Any]] = {}
        self.fulfillments: dict[int, dict[str, Any]] = {}
        self.fulfillment_events: dict[int, list[dict[str, Any]]] = {}
        base = 5_000_000_000_000 + self.rng.randrange(10**9) * 1000
        self._order_ids = itertools.count(base, 7919)
        self._line_ids = itertools.count(base + 13, 7919)
        self._fo_ids = itertools.count(base + 29, 7919)
        self._fo_line_ids = itertools.count(base + 43, 7919)
        self._fulfillment_ids = itertools.count(base + 61, 7919)
        self._numbers = itertools.count(1001)
        self.shop_id = 49144037539
        self._stream: asyncio.Task[None] | None = None

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # -- orders ---------------------------------------------------------------------------

    def create_order(self, spec: OrderSpec | None = None) -> dict[str, Any]:
        """Stores a realistic order (section 1.2 fields) and sends ``orders/create``."""
        spec = spec or OrderSpec()
        if not spec.line_items:
            spec.line_items = self._random_lines()
        first = spec.first_name or self.rng.choice(FIRST_NAMES)
        last = spec.last_name or self.rng.choice(LAST_NAMES)
        email = spec.email or f"{first}.{last}@example.com".lower().replace(" ", "")
        currency = spec.currency or self.config.currency
        shipping = spec.shipping_address or AddressSpec(first_name=first, last_name=last)
        billing = spec.billing_address or shipping
        now = _iso(self.clock.now())
        order_id = next(self._order_ids)
        number = next(self._numbers)
        customer_id = 200_000_000 + self.rng.randrange(10**8)

        line_items: list[dict[str, Any]] = []
        subtotal = Decimal(0)
        weight = 0
        for item in spec.line_items:
            line_id = next(self._line_ids)
            variant_id = item.variant_id or 39_000_000 + self.rng.randrange(10**6)
            product_id = item.product_id or 632_000_000 + self.rng.randrange(10**6)
            title = item.title or item.sku.replace("-", " ").title()
            properties = (
                [{"name": k, "value": v} for k, v in item.properties.items()]
                if isinstance(item.properties, dict)
                else [dict(p) for p in item.properties]
            )
            subtotal += Decimal(item.price) * item.quantity
            weight += item.grams * item.quantity
            line_items.append(
                {
                    "id": line_id,
                    "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                    "product_id": product_id,
                    "variant_id": variant_id,
                    "sku": item.sku,
                    "title": title,
                    "variant_title": item.variant_title,
                    "name": f"{title} - {item.variant_title}" if item.variant_title else title,
                    "vendor": "Forma3D Sandbox Farm",
                    "quantity": item.quantity,
                    "current_quantity": item.quantity,
                    "fulfillable_quantity": item.quantity,
                    "price": _money(Decimal(item.price)),
                    "grams": item.grams,
                    "requires_shipping": item.requires_shipping,
                    "taxable": True,
                    "gift_card": False,
                    "fulfillment_service": "manual",
                    "fulfillment_status": None,
                    "product_exists": True,
                    "properties": properties,
                    "total_discount": "0.00",
                    "tax_lines": [],
                    "discount_allocations": [],
                }
            )
        shipping_price = Decimal(spec.shipping_price)
        total = subtotal + shipping_price
        tax = total * Decimal(21) / Decimal(121)  # prices include 21 % VAT, as in NL shops
        order: dict[str, Any] = {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{number}",
            "order_number": number,
            "number": number - 1000,
            "token": uuid.UUID(int=self.rng.getrandbits(128)).hex,
            "email": email,
            "contact_email": email,
            "phone": spec.phone,
            "created_at": now,
            "updated_at": now,
            "processed_at": now,
            "currency": currency,
            "presentment_currency": currency,
            "total_price": _money(total),
            "subtotal_price": _money(subtotal),
            "total_line_items_price": _money(subtotal),
            "total_discounts": "0.00",
            "total_tax": _money(tax),
            "taxes_included": True,
            "total_weight": weight,
            "financial_status": spec.financial_status,
            "fulfillment_status": None,
            "cancelled_at": None,
            "cancel_reason": None,
            "closed_at": None,
            "confirmed": True,
            "test": spec.test,
            "tags": spec.tags,
            "note": spec.note,
            "note_attributes": [dict(a) for a in spec.note_attributes],
            "source_name": "web",
            "line_items": line_items,
            "shipping_address": self._address(shipping),
            "billing_address": self._address(billing),
            "customer": {
                "id": customer_id,
                "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}",
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": spec.phone,
            },
            "shipping_lines": [
                {
                    "id": next(self._line_ids),
                    "code": spec.shipping_title,
                    "title": spec.shipping_title,
                    "price": _money(shipping_price),
                    "source": "shopify",
                }
            ],
            "fulfillments": [],
            "refunds": [],
        }
        self.orders[order_id] = order
        fo_id = next(self._fo_ids)
        self.fulfillment_orders[fo_id] = {
            "id": fo_id,
            "shop_id": self.shop_id,
            "order_id": order_id,
            "assigned_location_id": self.config.location_id,
            "fulfillment_service_handle": "manual",
            "request_status": "unsubmitted",
            "status": "open",
            "supported_actions": ["create_fulfillment"],
            "destination": {
                "id": customer_id,
                "address1": shipping.address1,
                "address2": shipping.address2,
                "city": shipping.city,
                "company": shipping.company,
                "country": shipping.country,
                "email": email,
                "first_name": shipping.first_name,
                "last_name": shipping.last_name,
                "phone": shipping.phone,
                "province": shipping.province,
                "zip": shipping.zip,
            },
            "line_items": [
                {
                    "id": next(self._fo_line_ids),
                    "shop_id": self.shop_id,
                    "fulfillment_order_id": fo_id,
                    "quantity": li["quantity"],
                    "line_item_id": li["id"],
                    "inventory_item_id": 38_000_000_000_000 + li["variant_id"],
                    "fulfillable_quantity": li["quantity"],
                    "variant_id": li["variant_id"],
                }
                for li in line_items
            ],
            "fulfill_at": None,
            "fulfillment_holds": [],
            "merchant_requests": [],
            "created_at": now,
            "updated_at": now,
        }
        self.emit("orders/create", order)
        return order

    def _random_lines(self) -> list[LineItemSpec]:
        catalog = self.config.catalog or [
            LineItemSpec(sku=sku, title=title, variant_title=variant, price=price, grams=grams)
            for sku, title, variant, price, grams in CATALOG
        ]
        picks = self.rng.sample(catalog, k=min(len(catalog), self.rng.choice((1, 1, 1, 2))))
        return [
            pick.model_copy(update={"quantity": self.rng.choice((1, 1, 1, 2, 3))}) for pick in picks
        ]

    def set_order_rate(self, orders_per_hour: float) -> None:
        """Starts, changes or (0) stops the stream of orders; needs a running event loop."""
        if orders_per_hour < 0:
            raise ValueError("orders_per_hour must be >= 0")
        self.config.orders_per_hour = orders_per_hour
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        if orders_per_hour > 0:
            self._stream = asyncio.create_task(self._order_stream(orders_per_hour))

    async def _order_stream(self, rate: float) -> None:
        """Orders arrive as a Poisson process on the simulated clock (demo, load tests)."""
        due = self.clock.elapsed()
        while True:
            due += self.rng.expovariate(rate / 3600.0)
            await self.clock.sleep_until(due)
            self.create_order()

    async def aclose(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream
            self._stream = None
        await self.dispatcher.aclose()

    @staticmethod
    def _address(spec: AddressSpec) -> dict[str, Any]:
        data = spec.model_dump()
        data["name"] = f"{spec.first_name} {spec.last_name}".strip()
        data["latitude"] = None
        data["longitude"] = None
        return data

    def cancel_order(self, order_id: int, reason: str = "customer") -> dict[str, Any]:
        """Cancels like the admin does: ``orders/cancelled`` then ``orders/updated``."""
        if reason not in CANCEL_REASONS:
            raise ValueError(f"cancel reason must be one of {', '.join(CANCEL_REASONS)}")
        order = self.orders[order_id]
        if order["cancelled_at"] is not None:
            raise ValueError("Order has already been cancelled")
        now = _iso(self.clock.now())
        order["cancelled_at"] = now
        order["cancel_reason"] = reason
        order["closed_at"] = now
        order["updated_at"] = now
        if order["financial_status"] == "paid":
            order["financial_status"] = "refunded"
        for fo in self._fos_of(order_id):
            if fo["status"] in ("open", "in_progress", "scheduled", "on_hold"):
                fo["status"] = "closed"
                fo["supported_actions"] = []
                fo["updated_at"] = now
        for line in order["line_items"]:
            line["fulfillable_quantity"] = 0
            line["current_quantity"] = 0
        self.emit("orders/cancelled", order)
        self.emit("orders/updated", order)
        return order

    # -- payment, edits, refunds (what the admin's buttons send) ---------------------------

    def _touch(self, order: dict[str, Any]) -> str:
        now = _iso(self.clock.now())
        order["updated_at"] = now
        return now

    def set_financial_status(self, order_id: int, status: str) -> dict[str, Any]:
        """A payment captured (``paid``: orders/paid, then orders/updated) or any other
        financial change (``authorized``, ``voided``, ...: orders/updated)."""
        if status not in FINANCIAL_STATUSES:
            raise ValueError(f"financial_status must be one of {', '.join(FINANCIAL_STATUSES)}")
        order = self.orders[order_id]
        if order["cancelled_at"] is not None:
            raise ValueError("Order has been cancelled")
        order["financial_status"] = status
        self._touch(order)
        if status == "paid":
            self.emit("orders/paid", order)
        self.emit("orders/updated", order)
        return order

    def edit_order(self, order_id: int, quantities: dict[int, int],
                   add: list[LineItemSpec] | None = None) -> dict[str, Any]:
        """An order edit: line items set to new quantities (0 removes them: Shopify keeps
        ``quantity`` and lowers ``current_quantity``), others added; sends orders/edited (the
        edit's summary) and orders/updated (the order)."""
        order = self.orders[order_id]
        if order["cancelled_at"] is not None:
            raise ValueError("Order has been cancelled")
        lines = {line["id"]: line for line in order["line_items"]}
        additions: list[dict[str, Any]] = []
        removals: list[dict[str, Any]] = []
        for line_id, quantity in quantities.items():
            line = lines.get(int(line_id))
            if line is None:
                raise ValueError(f"line item {line_id} is not in the order")
            if quantity < 0:
                raise ValueError("quantity must be >= 0")
            delta = quantity - line["current_quantity"]
            if delta > 0 and quantity > line["quantity"]:
                line["quantity"] = quantity
            line["current_quantity"] = quantity
            line["fulfillable_quantity"] = quantity
            (additions if delta > 0 else removals).append({"id": line["id"],
                                                           "delta": abs(delta)})
        for spec in add or []:
            line_id = next(self._line_ids)
            title = spec.title or spec.sku.replace("-", " ").title()
            order["line_items"].append({
                "id": line_id, "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                "product_id": spec.product_id or 632_000_000 + self.rng.randrange(10**6),
                "variant_id": spec.variant_id or 39_000_000 + self.rng.randrange(10**6),
                "sku": spec.sku, "title": title, "variant_title": spec.variant_title,
                "name": title, "quantity": spec.quantity, "current_quantity": spec.quantity,
                "fulfillable_quantity": spec.quantity, "price": _money(Decimal(spec.price)),
                "grams": spec.grams, "requires_shipping": spec.requires_shipping,
                "taxable": True, "gift_card": False, "fulfillment_service": "manual",
                "fulfillment_status": None, "product_exists": True, "properties": [],
                "total_discount": "0.00", "tax_lines": [], "discount_allocations": []})
            additions.append({"id": line_id, "delta": spec.quantity})
        now = self._touch(order)
        self.emit("orders/edited", {"order_edit": {
            "id": 10**12 + self.rng.randrange(10**9), "app_id": None, "created_at": now,
            "notify_customer": False, "order_id": order_id, "staff_note": "",
            "user_id": None, "line_items": {"additions": additions, "removals": removals},
            "discounts": {"line_item": {"additions": [], "removals": []}},
            "shipping_lines": {"additions": [], "removals": []}}})
        self.emit("orders/updated", order)
        return order

    def refund(self, order_id: int, quantities: dict[int, int],
               note: str | None = None) -> dict[str, Any]:
        """A refund of line items (restock type ``cancel``): sends refunds/create (the refund)
        and orders/updated (the order with lowered current quantities)."""
        order = self.orders[order_id]
        lines = {line["id"]: line for line in order["line_items"]}
        refund_lines = []
        for line_id, quantity in quantities.items():
            line = lines.get(int(line_id))
            if line is None:
                raise ValueError(f"line item {line_id} is not in the order")
            if not 0 < quantity <= line["current_quantity"]:
                raise ValueError(f"line item {line_id}: cannot refund {quantity} of "
                                 f"{line['current_quantity']}")
            line["current_quantity"] -= quantity
            line["fulfillable_quantity"] = line["current_quantity"]
            refund_lines.append({
                "id": next(self._line_ids), "line_item_id": line["id"], "quantity": quantity,
                "location_id": self.config.location_id, "restock_type": "cancel",
                "subtotal": _money(Decimal(line["price"]) * quantity), "total_tax": "0.00",
                "line_item": dict(line)})
        now = self._touch(order)
        refund_id = 509_000_000_000 + self.rng.randrange(10**9)
        refund = {"id": refund_id, "order_id": order_id, "created_at": now,
                  "processed_at": now, "note": note, "restock": True, "user_id": None,
                  "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
                  "refund_line_items": refund_lines, "transactions": [],
                  "order_adjustments": []}
        order["refunds"].append(refund)
        left = sum(line["current_quantity"] for line in order["line_items"])
        order["financial_status"] = "refunded" if left == 0 else "partially_refunded"
        self.emit("refunds/create", refund)
        self.emit("orders/updated", order)
        return refund

    def _fos_of(self, order_id: int) -> list[dict[str, Any]]:
        return [fo for fo in self.fulfillment_orders.values() if fo["order_id"] == order_id]

    # -- webhooks -------------------------------------------------------------------------

    def emit(self, topic: str, resource: dict[str, Any]) -> None:
        """Signs the body once and sends it to every target (one event id across targets)."""
        topics = self.config.webhook_topics
        if topics is not None and topic not in topics:
            return
        body = json.dumps(resource, separators=(",", ":")).encode()
        event_id = self._uuid()
        moment = self.clock.now().astimezone(UTC)
        triggered = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"
        subscribed = [hook["address"] for hook in self.subscriptions.values()
                      if hook["topic"] == topic]
        for target in [*self.targets, *subscribed]:
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                SHOPIFY_HMAC_HEADER: shopify_signature(self.config.webhook_secret, body),
                "X-Shopify-Shop-Domain": self.config.shop_domain,
                "X-Shopify-API-Version": self.config.webhook_api_version,
                "X-Shopify-Webhook-Id": self._uuid(),
                "X-Shopify-Event-Id": event_id,
                "X-Shopify-Triggered-At": triggered,
            }
            self.dispatcher.send(target, body, headers, topic)

    def subscribers(self) -> list[str]:
        """Every address that receives webhooks (preset or subscribed), once each."""
        return list(dict.fromkeys(
            [*self.targets, *(h["address"] for h in self.subscriptions.values())]))

    def subscribe(self, spec: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /webhooks.json semantics; returns (HTTP status, body)."""
        topic, address = str(spec.get("topic") or ""), str(spec.get("address") or "").strip()
        errors: dict[str, list[str]] = {}
        if not topic:
            errors["topic"] = ["can't be blank"]
        elif topic not in WEBHOOK_TOPICS:
            errors["topic"] = [f"Invalid topic specified. Topics allowed: "
                               f"{', '.join(WEBHOOK_TOPICS)}"]
        if not address:
            errors["address"] = ["can't be blank"]
        elif not address.startswith(("http://", "https://")):
            errors["address"] = ["protocol is not supported"]
        elif any(h["topic"] == topic and h["address"] == address
                 for h in self.subscriptions.values()):
            errors["address"] = ["for this topic has already been taken"]
        if errors:
            return 422, {"errors": errors}
        now, hook_id = _iso(self.clock.now()), next(self._subscription_ids)
        hook = {"id": hook_id, "address": address, "topic": topic,
                "created_at": now, "updated_at": now, "format": str(spec.get("format", "json")),
                "fields": list(spec.get("fields") or []), "metafield_namespaces": [],
                "api_version": self.config.webhook_api_version,
                "private_metafield_namespaces": []}
        self.subscriptions[hook_id] = hook
        return 201, {"webhook": hook}

    # -- fulfilments ----------------------------------------------------------------------

    def create_fulfillment(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST /fulfillments.json semantics; returns (HTTP status, body)."""
        spec = payload.get("fulfillment")
        if not isinstance(spec, dict) or not spec.get("line_items_by_fulfillment_order"):
            return 400, {"errors": {"fulfillment": "Required parameter missing or invalid"}}
        picks: list[tuple[dict[str, Any], dict[str, Any], int]] = []
        order_id: int | None = None
        for group in spec["line_items_by_fulfillment_order"]:
            fo = self.fulfillment_orders.get(int(group.get("fulfillment_order_id", 0)))
            if fo is None:
                return 404, {"errors": "Not Found"}
            if order_id is not None and fo["order_id"] != order_id:
                return 422, {"errors": ["All fulfillment orders must belong to the same order"]}
            order_id = fo["order_id"]
            if "create_fulfillment" not in fo["supported_actions"]:
                return 422, {
                    "errors": [
                        f"Fulfillment order {fo['id']} has an unfulfillable status= {fo['status']}."
                    ]
                }
            wanted = group.get("fulfillment_order_line_items")
            by_id = {line["id"]: line for line in fo["line_items"]}
            if not wanted:
                wanted = [
                    {"id": line["id"], "quantity": line["fulfillable_quantity"]}
                    for line in fo["line_items"]
                    if line["fulfillable_quantity"] > 0
                ]
            for entry in wanted:
                line = by_id.get(int(entry.get("id", 0)))
                if line is None:
                    return 422, {
                        "errors": [
                            f"Fulfillment order line item {entry.get('id')} does not belong to "
                            f"fulfillment order {fo['id']} (use fulfillment order line item ids)"
                        ]
                    }
                quantity = int(entry.get("quantity", line["fulfillable_quantity"]))
                if quantity < 1 or quantity > line["fulfillable_quantity"]:
                    return 422, {
                        "errors": ["Invalid fulfillment order line item quantity requested."]
                    }
                picks.append((fo, line, quantity))
        assert order_id is not None
        order = self.orders[order_id]
        tracking = spec.get("tracking_info") or {}
        numbers, urls = _tracking_lists(tracking)
        now = _iso(self.clock.now())
        fulfillment_id = next(self._fulfillment_ids)
        lines_by_id = {line["id"]: line for line in order["line_items"]}
        fulfilled_lines: list[dict[str, Any]] = []
        for fo, fo_line, quantity in picks:
            fo_line["fulfillable_quantity"] -= quantity
            order_line = lines_by_id[fo_line["line_item_id"]]
            order_line["fulfillable_quantity"] -= quantity
            order_line["fulfillment_status"] = (
                "fulfilled" if order_line["fulfillable_quantity"] == 0 else "partial"
            )
            fulfilled_lines.append({**order_line, "quantity": quantity})
            remaining = sum(line["fulfillable_quantity"] for line in fo["line_items"])
            fo["status"] = "closed" if remaining == 0 else "in_progress"
            if remaining == 0:
                fo["supported_actions"] = []
            fo["updated_at"] = now
        count = len(order["fulfillments"]) + 1
        fulfillment = {
            "id": fulfillment_id,
            "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
            "order_id": order_id,
            "status": "success",
            "created_at": now,
            "updated_at": now,
            "service": "manual",
            "location_id": self.config.location_id,
            "name": f"{order['name']}.{count}",
            "tracking_company": tracking.get("company"),
            "tracking_number": numbers[0] if numbers else None,
            "tracking_numbers": numbers,
            "tracking_url": urls[0] if urls else None,
            "tracking_urls": urls,
            "shipment_status": None,
            "notify_customer": bool(spec.get("notify_customer", False)),
            "line_items": fulfilled_lines,
        }
        self.fulfillments[fulfillment_id] = fulfillment
        order["fulfillments"].append(fulfillment)
        left = sum(line["fulfillable_quantity"] for line in order["line_items"])
        order["fulfillment_status"] = "fulfilled" if left == 0 else "partial"
        order["updated_at"] = now
        self.emit("fulfillments/create", fulfillment)
        self.emit("orders/fulfilled" if left == 0 else "orders/partially_fulfilled", order)
        self.emit("orders/updated", order)
        return 201, {"fulfillment": fulfillment}

    def update_tracking(self, fulfillment_id: int, payload: dict[str, Any]) -> tuple[int, Any]:
        fulfillment = self.fulfillments.get(fulfillment_id)
        if fulfillment is None:
            return 404, {"errors": "Not Found"}
        spec = payload.get("fulfillment")
        if not isinstance(spec, dict) or not isinstance(spec.get("tracking_info"), dict):
            return 400, {"errors": {"fulfillment": "Required parameter missing or invalid"}}
        tracking = spec["tracking_info"]
        numbers, urls = _tracking_lists(tracking)
        if tracking.get("company") is not None:
            fulfillment["tracking_company"] = tracking["company"]
        if numbers:
            fulfillment["tracking_numbers"] = numbers
            fulfillment["tracking_number"] = numbers[0]
        if urls:
            fulfillment["tracking_urls"] = urls
            fulfillment["tracking_url"] = urls[0]
        fulfillment["updated_at"] = _iso(self.clock.now())
        self.emit("fulfillments/update", fulfillment)
        return 200, {"fulfillment": fulfillment}

    def create_fulfillment_event(self, order_id: int, fulfillment_id: int,
                                 payload: dict[str, Any]) -> tuple[int, Any]:
        """POST /orders/{id}/fulfillments/{id}/events.json: the event becomes the fulfilment's
        `shipment_status` (accepted on cancelled fulfilments too, as Shopify does)."""
        fulfillment = self.fulfillments.get(fulfillment_id)
        if fulfillment is None or fulfillment["order_id"] != order_id:
            return 404, {"errors": "Not Found"}
        spec = payload.get("event")
        if not isinstance(spec, dict) or not spec.get("status"):
            return 400, {"errors": {"event": "Required parameter missing or invalid"}}
        if spec["status"] not in FULFILLMENT_EVENT_STATUSES:
            return 422, {"errors": {"status": ["is not included in the list"]}}
        now = _iso(self.clock.now())
        event_id = next(self._fulfillment_ids)
        event = {
            "id": event_id,
            "admin_graphql_api_id": f"gid://shopify/FulfillmentEvent/{event_id}",
            "fulfillment_id": fulfillment_id,
            "order_id": order_id,
            "shop_id": self.shop_id,
            "status": spec["status"],
            "message": spec.get("message"),
            "happened_at": spec.get("happened_at") or now,
            "estimated_delivery_at": spec.get("estimated_delivery_at"),
            "city": spec.get("city"),
            "province": spec.get("province"),
            "country": spec.get("country"),
            "zip": spec.get("zip"),
            "address1": spec.get("address1"),
            "latitude": spec.get("latitude"),
            "longitude": spec.get("longitude"),
            "created_at": now,
            "updated_at": now,
        }
        self.fulfillment_events.setdefault(fulfillment_id, []).append(event)
        fulfillment["shipment_status"] = spec["status"]
        fulfillment["updated_at"] = now
        self.emit("fulfillments/update", fulfillment)
        return 200, {"fulfillment_event": event}

    def cancel_fulfillment(self, fulfillment_id: int) -> tuple[int, Any]:
        fulfillment = self.fulfillments.get(fulfillment_id)
        if fulfillment is None:
            return 404, {"errors": "Not Found"}
        if fulfillment["status"] == "cancelled":
            return 422, {"errors": ["Fulfillment has already been cancelled"]}
        fulfillment["status"] = "cancelled"
        order = self.orders[fulfillment["order_id"]]
        lines_by_id = {line["id"]: line for line in order["line_items"]}
        for line in fulfillment["line_items"]:
            order_line = lines_by_id[line["id"]]
            order_line["fulfillable_quantity"] += line["quantity"]
            order_line["fulfillment_status"] = None
            for fo in self._fos_of(order["id"]):
                for fo_line in fo["line_items"]:
                    if fo_line["line_item_id"] == line["id"]:
                        fo_line["fulfillable_quantity"] += line["quantity"]
                        fo["status"] = "open"
                        fo["supported_actions"] = ["create_fulfillment"]
        left = sum(line["fulfillable_quantity"] for line in order["line_items"])
        total = sum(line["quantity"] for line in order["line_items"])
        order["fulfillment_status"] = None if left == total else "partial"
        self.emit("fulfillments/update", fulfillment)
        self.emit("orders/updated", order)
        return 200, {"fulfillment": fulfillment}

    # -- queries --------------------------------------------------------------------------

    def select_orders(self, filters: dict[str, str]) -> list[dict[str, Any]]:
        """Orders matching the list filters, newest (highest id) first."""
        status = filters.get("status", "open")
        rows = sorted(self.orders.values(), key=lambda o: o["id"], reverse=True)

        def keep(order: dict[str, Any]) -> bool:
            if status == "open" and (order["cancelled_at"] or order["closed_at"]):
                return False
            if status == "closed" and not order["closed_at"]:
                return False
            if status == "cancelled" and not order["cancelled_at"]:
                return False
            for field_name in ("created_at", "updated_at", "processed_at"):
                low = filters.get(f"{field_name}_min")
                high = filters.get(f"{field_name}_max")
                value = _parse_time(order[field_name])
                if low and value < _parse_time(low):
                    return False
                if high and value > _parse_time(high):
                    return False
            if filters.get("since_id") and order["id"] <= int(filters["since_id"]):
                return False
            ids = {int(i) for i in filters.get("ids", "").split(",") if i}
            if ids and order["id"] not in ids:
                return False
            fin = filters.get("financial_status")
            if fin and fin != "any" and order["financial_status"] != fin:
                return False
            ful = filters.get("fulfillment_status")
            if ful and ful != "any":
                current = order["fulfillment_status"]
                wanted = {"shipped": "fulfilled", "unshipped": None, "unfulfilled": None}.get(
                    ful, ful
                )
                if current != wanted:
                    return False
            return True

        return [order for order in rows if keep(order)]


def _tracking_lists(tracking: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``number``/``url`` or the plural lists, as FulfillmentTrackingInput allows either."""
    numbers = list(tracking.get("numbers") or [])
    if not numbers and tracking.get("number"):
        numbers = [str(tracking["number"])]
    urls = list(tracking.get("urls") or [])
    if not urls and tracking.get("url"):
        urls = [str(tracking["url"])]
    return numbers, urls


def _only(resource: dict[str, Any], fields: str | None) -> dict[str, Any]:
    if not fields:
        return resource
    wanted = {name.strip() for name in fields.split(",") if name.strip()}
    return {k: v for k, v in resource.items() if k in wanted}


def _encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> dict[str, Any]:
    padded = token + "=" * (-len(token) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(data, dict):
        raise ValueError("bad cursor")
    return data


LIST_FILTERS = (
    "status",
    "created_at_min",
    "created_at_max",
    "updated_at_min",
    "updated_at_max",
    "processed_at_min",
    "processed_at_max",
    "financial_status",
    "fulfillment_status",
    "since_id",
    "ids",
)


def build_shopify_app(sandbox: ShopifySandbox) -> Starlette:
    """The Admin REST routes under ``/admin/api/{version}/`` plus ``/_sandbox/`` controls."""

    def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=headers)

    def guard(request: Request) -> Response | None:
        version = request.path_params.get("version", "")
        if not API_VERSION_RE.match(version):
            return reply(404, {"errors": "Not Found"})
        token = request.headers.get("X-Shopify-Access-Token")
        if token != sandbox.config.access_token:
            return reply(401, {"errors": INVALID_TOKEN})
        limit_header = f"{sandbox.bucket.used}/{sandbox.bucket.capacity}"
        if not sandbox.bucket.take():
            return reply(
                429,
                {"errors": THROTTLED},
                {"Retry-After": "2.0", "X-Shopify-Shop-Api-Call-Limit": limit_header},
            )
        return None

    def with_limit(response: Response) -> Response:
        response.headers["X-Shopify-Shop-Api-Call-Limit"] = (
            f"{sandbox.bucket.used}/{sandbox.bucket.capacity}"
        )
        return response

    async def list_orders(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        params = request.query_params
        try:
            limit = int(params.get("limit", "50"))
        except ValueError:
            return with_limit(reply(400, {"errors": {"limit": "Invalid limit"}}))
        if not 1 <= limit <= 250:
            return with_limit(reply(400, {"errors": {"limit": "Limit must be between 1 and 250"}}))
        page_info = params.get("page_info")
        if page_info is not None:
            extra = [name for name in params if name not in ("page_info", "limit", "fields")]
            if extra:
                return with_limit(
                    reply(
                        400,
                        {
                            "errors": {
                                "page_info": f"{extra[0]} cannot be passed when page_info is "
                                "present. See https://shopify.dev/api/usage/pagination-rest "
                                "for more information."
                            }
                        },
                    )
                )
            try:
                cursor = _decode_cursor(page_info)
                filters = {str(k): str(v) for k, v in cursor["filters"].items()}
                direction = str(cursor["direction"])
                anchor = int(cursor["anchor"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                return with_limit(reply(400, {"errors": {"page_info": "Invalid value."}}))
        else:
            filters = {name: params[name] for name in LIST_FILTERS if name in params}
            if filters.get("status", "open") not in ORDER_STATUSES:
                return with_limit(reply(400, {"errors": {"status": "Invalid status"}}))
            direction, anchor = "next", 0
        try:
            rows = sandbox.select_orders(filters)
        except ValueError:
            return with_limit(reply(400, {"errors": {"created_at_min": "Invalid date"}}))
        if page_info is None:
            page = rows[:limit]
        elif direction == "next":
            after = [o for o in rows if o["id"] < anchor]
            page = after[:limit]
        else:
            before = [o for o in rows if o["id"] > anchor]
            page = before[-limit:]
        links: list[str] = []
        if page:
            base = f"{str(request.base_url).rstrip('/')}{request.url.path}"
            fields = params.get("fields")

            def link(direction: str, anchor: int, rel: str) -> str:
                query: dict[str, str] = {"limit": str(limit)}
                if fields:
                    query["fields"] = fields
                query["page_info"] = _encode_cursor(
                    {"filters": filters, "direction": direction, "anchor": anchor}
                )
                return f'<{base}?{urlencode(query)}>; rel="{rel}"'

            if rows.index(page[0]) > 0:
                links.append(link("previous", page[0]["id"], "previous"))
            if rows.index(page[-1]) < len(rows) - 1:
                links.append(link("next", page[-1]["id"], "next"))
        headers = {"Link": ", ".join(links)} if links else None
        body = {"orders": [_only(o, params.get("fields")) for o in page]}
        return with_limit(reply(200, body, headers))

    async def count_orders(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        filters = {n: request.query_params[n] for n in LIST_FILTERS if n in request.query_params}
        return with_limit(reply(200, {"count": len(sandbox.select_orders(filters))}))

    async def get_order(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        order = sandbox.orders.get(request.path_params["order_id"])
        if order is None:
            return with_limit(reply(404, {"errors": "Not Found"}))
        return with_limit(reply(200, {"order": _only(order, request.query_params.get("fields"))}))

    async def cancel_order(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        order_id = request.path_params["order_id"]
        if order_id not in sandbox.orders:
            return with_limit(reply(404, {"errors": "Not Found"}))
        body = await read_json(request)
        try:
            order = sandbox.cancel_order(order_id, str(body.get("reason", "other")))
        except ValueError as exc:
            return with_limit(reply(422, {"errors": {"base": [str(exc)]}}))
        return with_limit(reply(200, {"order": order}))

    async def order_fulfillment_orders(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        order_id = request.path_params["order_id"]
        if order_id not in sandbox.orders:
            return with_limit(reply(404, {"errors": "Not Found"}))
        return with_limit(reply(200, {"fulfillment_orders": sandbox._fos_of(order_id)}))

    async def order_fulfillments(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        order = sandbox.orders.get(request.path_params["order_id"])
        if order is None:
            return with_limit(reply(404, {"errors": "Not Found"}))
        return with_limit(reply(200, {"fulfillments": order["fulfillments"]}))

    async def create_fulfillment(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        try:
            payload = await read_json(request)
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        status, body = sandbox.create_fulfillment(payload)
        return with_limit(reply(status, body))

    async def update_tracking(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        try:
            payload = await read_json(request)
        except ValueError:
            payload = {}
        status, body = sandbox.update_tracking(request.path_params["fulfillment_id"], payload)
        return with_limit(reply(status, body))

    async def fulfillment_events(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        order_id = request.path_params["order_id"]
        fulfillment_id = request.path_params["fulfillment_id"]
        if request.method == "GET":
            fulfillment = sandbox.fulfillments.get(fulfillment_id)
            if fulfillment is None or fulfillment["order_id"] != order_id:
                return with_limit(reply(404, {"errors": "Not Found"}))
            return with_limit(reply(200, {
                "fulfillment_events": sandbox.fulfillment_events.get(fulfillment_id, [])}))
        try:
            payload = await read_json(request)
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        status, body = sandbox.create_fulfillment_event(order_id, fulfillment_id, payload)
        return with_limit(reply(status, body))

    async def cancel_fulfillment(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        status, body = sandbox.cancel_fulfillment(request.path_params["fulfillment_id"])
        return with_limit(reply(status, body))

    # -- sandbox controls -----------------------------------------------------------------

    async def sandbox_orders(request: Request) -> Response:
        if request.method == "GET":
            rows = sorted(sandbox.orders.values(), key=lambda o: o["id"])
            return reply(200, {"orders": rows})
        try:
            spec = OrderSpec.model_validate(await read_json(request))
        except ValueError as exc:
            return reply(400, {"error": str(exc)})
        return reply(201, {"order": sandbox.create_order(spec)})

    async def sandbox_cancel(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if order_id not in sandbox.orders:
            return reply(404, {"error": "order not found"})
        body = await read_json(request)
        try:
            order = sandbox.cancel_order(order_id, str(body.get("reason", "customer")))
        except ValueError as exc:
            return reply(409, {"error": str(exc)})
        return reply(200, {"order": order})

    async def sandbox_financial(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if order_id not in sandbox.orders:
            return reply(404, {"error": "order not found"})
        body = await read_json(request)
        try:
            order = sandbox.set_financial_status(order_id, str(body.get("financial_status",
                                                                         "paid")))
        except ValueError as exc:
            return reply(409, {"error": str(exc)})
        return reply(200, {"order": order})

    async def sandbox_edit(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if order_id not in sandbox.orders:
            return reply(404, {"error": "order not found"})
        body = await read_json(request)
        try:
            add = [LineItemSpec.model_validate(a) for a in body.get("add") or []]
            quantities = {int(k): int(v) for k, v in (body.get("quantities") or {}).items()}
            order = sandbox.edit_order(order_id, quantities, add)
        except ValueError as exc:
            return reply(409, {"error": str(exc)})
        return reply(200, {"order": order})

    async def sandbox_refund(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if order_id not in sandbox.orders:
            return reply(404, {"error": "order not found"})
        body = await read_json(request)
        try:
            quantities = {int(k): int(v) for k, v in (body.get("quantities") or {}).items()}
            refund = sandbox.refund(order_id, quantities, body.get("note"))
        except ValueError as exc:
            return reply(409, {"error": str(exc)})
        return reply(201, {"refund": refund})

    async def sandbox_rate_limit(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            if "bucket_size" in body:
                sandbox.bucket.capacity = int(body["bucket_size"])
            if "leak_rate" in body:
                sandbox.bucket.leak_rate = float(body["leak_rate"])
            if body.get("reset"):
                sandbox.bucket.reset()
        bucket = sandbox.bucket
        state = {"bucket_size": bucket.capacity, "leak_rate": bucket.leak_rate, "used": bucket.used}
        return reply(200, state)

    async def sandbox_order_stream(request: Request) -> Response:
        if request.method == "POST":
            body = await read_json(request)
            try:
                sandbox.set_order_rate(float(body.get("orders_per_hour", 0)))
            except ValueError as exc:
                return reply(400, {"error": str(exc)})
        return reply(200, {"orders_per_hour": sandbox.config.orders_per_hour})

    async def shop(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        config = sandbox.config
        return with_limit(reply(200, {"shop": {
            "id": sandbox.shop_id, "name": "Forma3D Sandbox", "domain": config.shop_domain,
            "myshopify_domain": config.shop_domain, "currency": config.currency,
            "plan_name": "partner_test"}}))

    async def webhooks(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "POST":
            body = await read_json(request)
            spec = body.get("webhook") if isinstance(body, dict) else None
            status, answer = sandbox.subscribe(spec if isinstance(spec, dict) else {})
            return with_limit(reply(status, answer))
        params = request.query_params
        rows = [h for h in sandbox.subscriptions.values()
                if h["topic"] == params.get("topic", h["topic"])
                and h["address"] == params.get("address", h["address"])
                and h["id"] > int(params.get("since_id", "0") or 0)]
        return with_limit(reply(200, {"webhooks": rows[: int(params.get("limit", "50"))]}))

    async def count_webhooks(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        params = request.query_params
        rows = [h for h in sandbox.subscriptions.values()
                if h["topic"] == params.get("topic", h["topic"])
                and h["address"] == params.get("address", h["address"])]
        return with_limit(reply(200, {"count": len(rows)}))

    async def webhook(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        hook = sandbox.subscriptions.get(request.path_params["webhook_id"])
        if hook is None:
            return with_limit(reply(404, {"errors": "Not Found"}))
        if request.method == "DELETE":
            del sandbox.subscriptions[hook["id"]]
            return with_limit(reply(200, {}))
        if request.method == "PUT":
            body = await read_json(request)
            change = body.get("webhook") if isinstance(body, dict) else None
            if isinstance(change, dict) and change.get("address"):
                hook["address"] = str(change["address"])
                hook["updated_at"] = _iso(sandbox.clock.now())
        return with_limit(reply(200, {"webhook": hook}))

    prefix = "/admin/api/{version}"
    routes = [
        Route(f"{prefix}/orders.json", list_orders, methods=["GET"]),
        Route(f"{prefix}/orders/count.json", count_orders, methods=["GET"]),
        Route(f"{prefix}/orders/{{order_id:int}}.json", get_order, methods=["GET"]),
        Route(f"{prefix}/orders/{{order_id:int}}/cancel.json", cancel_order, methods=["POST"]),
        Route(
            f"{prefix}/orders/{{order_id:int}}/fulfillment_orders.json",
            order_fulfillment_orders,
            methods=["GET"],
        ),
        Route(
            f"{prefix}/orders/{{order_id:int}}/fulfillments.json",
            order_fulfillments,
            methods=["GET"],
        ),
        Route(f"{prefix}/fulfillments.json", create_fulfillment, methods=["POST"]),
        Route(f"{prefix}/shop.json", shop, methods=["GET"]),
        Route(f"{prefix}/webhooks.json", webhooks, methods=["GET", "POST"]),
        Route(f"{prefix}/webhooks/count.json", count_webhooks, methods=["GET"]),
        Route(f"{prefix}/webhooks/{{webhook_id:int}}.json", webhook,
              methods=["GET", "PUT", "DELETE"]),
        Route(
            f"{prefix}/orders/{{order_id:int}}/fulfillments/{{fulfillment_id:int}}/events.json",
            fulfillment_events,
            methods=["GET", "POST"],
        ),
        Route(
            f"{prefix}/fulfillments/{{fulfillment_id:int}}/update_tracking.json",
            update_tracking,
            methods=["POST"],
        ),
        Route(
            f"{prefix}/fulfillments/{{fulfillment_id:int}}/cancel.json",
            cancel_fulfillment,
            methods=["POST"],
        ),
        Route("/_sandbox/orders", sandbox_orders, methods=["GET", "POST"]),
        Route("/_sandbox/orders/{order_id:int}/cancel", sandbox_cancel, methods=["POST"]),
        Route("/_sandbox/orders/{order_id:int}/financial_status", sandbox_financial,
              methods=["POST"]),
        Route("/_sandbox/orders/{order_id:int}/edit", sandbox_edit, methods=["POST"]),
        Route("/_sandbox/orders/{order_id:int}/refunds", sandbox_refund, methods=["POST"]),
        Route("/_sandbox/rate_limit", sandbox_rate_limit, methods=["GET", "POST"]),
        Route("/_sandbox/order_stream", sandbox_order_stream, methods=["GET", "POST"]),
        *control_routes(sandbox.clock, sandbox.dispatcher, sandbox.subscribers),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
