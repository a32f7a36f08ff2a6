"""How the customer chose to be delivered at checkout, and which Sendcloud method ships it.

Shopify's order carries the chosen rate as `shipping_lines[0]` (`code` and `title`, both named by
the merchant, e.g. "Service Point Delivery DPD"); a pickup point chosen in the checkout or on the
Thank-You page reaches the order only as cart attributes (`note_attributes`), since Shopify's
shipping line has no service-point field and Sendcloud's own Shopify flow keeps the choice on its
side. A tenant maps its checkout rates onto Sendcloud methods with `ShippingMethodRule`s (a
tenant setting); an order whose rate no rule names ships with the integration's default.
No I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Cart-attribute names a pickup-point picker writes (first one present wins): our own name, the
# generic one, and the `point_*` names of the widely used theme picker (shop-onboarding.md §3).
SERVICE_POINT_KEYS = ("sendcloud_service_point_id", "service_point_id", "point_id")
POST_NUMBER_KEYS = ("sendcloud_post_number", "to_post_number", "point_post_number")
SERVICE_POINT_MAX = 64

Centimetres = Annotated[Decimal, Field(gt=0, lt=1000, decimal_places=2)]
Dimensions = tuple[Centimetres, Centimetres, Centimetres]
"""Length, width and height of a parcel in centimetres (Sendcloud wants all three or none)."""


class CheckoutDelivery(BaseModel):
    """What an order's checkout said about its delivery (stored on the order as `delivery`)."""

    model_config = ConfigDict(frozen=True)
    method_code: str | None = None
    method_title: str | None = None
    service_point_id: str | None = None
    post_number: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.method_code or self.method_title or self.service_point_id)


def _attributes(note_attributes: Iterable[Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in note_attributes:
        if isinstance(pair, Mapping):
            name, value = pair.get("name"), pair.get("value")
        else:
            name, value = getattr(pair, "name", None), getattr(pair, "value", None)
        if isinstance(name, str) and value is not None and str(value).strip():
            found.setdefault(name.strip().lower(), str(value).strip())
    return found


def checkout_delivery(shipping_lines: Sequence[Any], note_attributes: Iterable[Any],
                      ) -> CheckoutDelivery:
    """The delivery choice of a Shopify order: its first shipping line, and a service point
    (with its post number, for lockers) from the cart attributes when one was picked."""
    first = shipping_lines[0] if shipping_lines else None

    def field(name: str) -> str | None:
        value = first.get(name) if isinstance(first, Mapping) else getattr(first, name, None)
        return str(value).strip() or None if value is not None else None

    attributes = _attributes(note_attributes)
    point = next((attributes[k] for k in SERVICE_POINT_KEYS if k in attributes), None)
    post = next((attributes[k] for k in POST_NUMBER_KEYS if k in attributes), None)
    if point is not None and (len(point) > SERVICE_POINT_MAX or not point.isalnum()):
        point = None  # not an id a picker writes: ship home rather than be refused
    return CheckoutDelivery(method_code=field("code"), method_title=field("title"),
                            service_point_id=point, post_number=post)


class ShippingMethodRule(BaseModel):
    """One checkout rate of the shop and the Sendcloud method that ships it: `checkout` is the
    shipping line's code or title (compared without case); `shipping_method_id` is used by v2
    parcels, `shipping_option_code` by v3 shipments (set the one your API version uses, or
    both)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    checkout: str = Field(min_length=1, max_length=255)
    shipping_method_id: int | None = Field(None, gt=0)
    shipping_option_code: str | None = Field(None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _some_method(self) -> ShippingMethodRule:
        if self.shipping_method_id is None and self.shipping_option_code is None:
            raise ValueError(f"checkout rate {self.checkout!r} maps to no Sendcloud method: set"
                             " shipping_method_id (v2) or shipping_option_code (v3)")
        return self


def choose_method(rules: Sequence[ShippingMethodRule], delivery: CheckoutDelivery,
                  ) -> ShippingMethodRule | None:
    """The rule naming the order's checkout rate (its code first, then its title), or None:
    the integration's default method ships it."""
    for key in (delivery.method_code, delivery.method_title):
        if not key:
            continue
        wanted = key.strip().casefold()
        for rule in rules:
            if rule.checkout.strip().casefold() == wanted:
                return rule
    return None


def parcel_dimensions(packagings: Iterable[Sequence[Decimal] | None],
                      default: Sequence[Decimal] | None) -> tuple[Decimal, Decimal, Decimal] | None:
    """The parcel's box: the largest (by volume) packaging of the order's products, else the
    tenant's default, else None (Sendcloud then uses the method's defaults)."""
    boxes = [tuple(Decimal(v) for v in p) for p in packagings if p is not None and len(p) == 3]
    if boxes:
        length, width, height = max(boxes, key=lambda b: (b[0] * b[1] * b[2], b))
        return length, width, height
    if default is not None and len(default) == 3:
        return Decimal(default[0]), Decimal(default[1]), Decimal(default[2])
    return None
