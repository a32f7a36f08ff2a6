"""Shopify's order payload, read into exactly what the order flow keeps (pure, no I/O).

The ingress validates a webhook with this model before answering 200 and the tenant entity
processes it with the same model, so every value that passes fits the columns it lands in
(bigint ids, integer quantities, numeric(12, 2) prices, text and jsonb without NUL).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forma3d.domain.bounded import CleanText, Count, Id64
from forma3d.domain.shipping.delivery import CheckoutDelivery, checkout_delivery

# numeric(12, 2): ten digits before the point.
PRICE_LIMIT = Decimal(10) ** 10
ROUNDING = Decimal("0.005")  # 9999999999.995 would round up past the limit

# Topics whose payload is an order; other topics (fulfillments/*, ...) are stored and ignored.
# (`orders/edited` carries an order-edit summary, not the order: Shopify follows an edit with an
# `orders/updated` holding the edited order, which is what we use.)
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/cancelled",
                          "orders/fulfilled", "orders/partially_fulfilled"})
REFUND_TOPICS = frozenset({"refunds/create"})


class ShopifyLineItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Id64
    sku: CleanText | None = None
    variant_id: Id64 | None = None
    title: CleanText = ""
    quantity: Count
    # After an edit or a refund Shopify keeps `quantity` as bought and lowers `current_quantity`.
    current_quantity: int | None = Field(None, ge=0, le=2**31 - 1)
    requires_shipping: bool = True
    properties: dict[CleanText, CleanText] = Field(default_factory=dict)

    @field_validator("properties", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """Shopify sends properties as [{name, value}]; keep them as a mapping."""
        if isinstance(value, list):
            return {str(p.get("name")): str(p.get("value")) for p in value
                    if isinstance(p, dict) and p.get("name") is not None}
        return value or {}

    @field_validator("requires_shipping", mode="before")
    @classmethod
    def _shipping_default(cls, value: Any) -> Any:
        return True if value is None else value

    @field_validator("sku", mode="before")
    @classmethod
    def _blank_sku(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("title", mode="before")
    @classmethod
    def _no_title(cls, value: Any) -> Any:
        return "" if value is None else value


class ShopifyAddress(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: CleanText | None = None
    first_name: CleanText | None = None
    last_name: CleanText | None = None
    company: CleanText | None = None
    address1: CleanText | None = None
    address2: CleanText | None = None
    city: CleanText | None = None
    province_code: CleanText | None = None
    zip: CleanText | None = None
    country_code: CleanText | None = None
    phone: CleanText | None = None

    @property
    def full_name(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or "-"


class ShopifyShippingLine(BaseModel):
    """The checkout rate chosen (merchant-named code and title)."""

    model_config = ConfigDict(extra="ignore")
    code: CleanText | None = None
    title: CleanText | None = None


class NoteAttribute(BaseModel):
    """A cart attribute carried over to the order (a pickup-point picker writes these)."""

    model_config = ConfigDict(extra="ignore")
    name: CleanText | None = None
    value: CleanText | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class ShopifyOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: Id64
    name: CleanText | None = None
    email: CleanText | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    currency: CleanText | None = None
    total_price: Decimal | None = Field(None, gt=-PRICE_LIMIT, lt=PRICE_LIMIT - ROUNDING,
                                        allow_inf_nan=False)
    cancelled_at: datetime | None = None
    cancel_reason: CleanText | None = None
    financial_status: CleanText | None = None
    line_items: list[ShopifyLineItem] = Field(min_length=1)
    shipping_address: ShopifyAddress | None = None
    shipping_lines: list[ShopifyShippingLine] = Field(default_factory=list)
    note_attributes: list[NoteAttribute] = Field(default_factory=list)

    @field_validator("shipping_lines", "note_attributes", mode="before")
    @classmethod
    def _few(cls, value: Any) -> Any:
        """Only the first ones matter (the delivery choice); never refuse an order for more."""
        return [v for v in value[:100] if isinstance(v, dict)] if isinstance(value, list) else []

    @property
    def delivery(self) -> CheckoutDelivery:
        """The checkout's delivery choice: rate, and service point when one was picked."""
        return checkout_delivery(self.shipping_lines, self.note_attributes)


class ShopifyRefundLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    line_item_id: Id64
    quantity: int = Field(ge=0, le=2**31 - 1)


class ShopifyRefund(BaseModel):
    """A `refunds/create` delivery: the refund, naming its order and the units refunded per line
    item (a refund of money alone has no refund line items)."""

    model_config = ConfigDict(extra="ignore")
    id: Id64
    order_id: Id64
    created_at: datetime | None = None
    note: CleanText | None = None
    refund_line_items: list[ShopifyRefundLine] = Field(default_factory=list)

    @field_validator("refund_line_items", mode="before")
    @classmethod
    def _no_lines(cls, value: Any) -> Any:
        return [] if value is None else value


def split_street(address1: str) -> tuple[str, str | None]:
    """'Stadhuisplein 10' -> ('Stadhuisplein', '10'); Sendcloud wants the number apart."""
    parts = address1.strip().rsplit(" ", 1)
    if len(parts) == 2 and any(ch.isdigit() for ch in parts[1]):
        return parts[0], parts[1]
    return address1.strip(), None
