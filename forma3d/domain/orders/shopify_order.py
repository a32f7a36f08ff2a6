"""Shopify's order payload, read into exactly what the order flow keeps (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Topics whose payload is an order; other topics (fulfillments/*, ...) are stored and ignored.
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/cancelled",
                          "orders/fulfilled", "orders/partially_fulfilled", "orders/edited"})


class ShopifyLineItem(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    sku: str | None = None
    variant_id: int | None = None
    title: str = ""
    quantity: int = Field(ge=1)
    properties: dict[str, str] = Field(default_factory=dict)

    @field_validator("properties", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """Shopify sends properties as [{name, value}]; keep them as a mapping."""
        if isinstance(value, list):
            return {str(p.get("name")): str(p.get("value")) for p in value
                    if isinstance(p, dict) and p.get("name") is not None}
        return value or {}

    @field_validator("sku", mode="before")
    @classmethod
    def _blank_sku(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value


class ShopifyAddress(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str | None = None
    phone: str | None = None

    @property
    def full_name(self) -> str:
        return self.name or " ".join(p for p in (self.first_name, self.last_name) if p) or "-"


class ShopifyOrder(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    name: str
    email: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    currency: str | None = None
    total_price: Decimal | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    line_items: list[ShopifyLineItem] = Field(min_length=1)
    shipping_address: ShopifyAddress | None = None


def split_street(address1: str) -> tuple[str, str | None]:
    """'Stadhuisplein 10' -> ('Stadhuisplein', '10'); Sendcloud wants the number apart."""
    parts = address1.strip().rsplit(" ", 1)
    if len(parts) == 2 and any(ch.isdigit() for ch in parts[1]):
        return parts[0], parts[1]
    return address1.strip(), None
