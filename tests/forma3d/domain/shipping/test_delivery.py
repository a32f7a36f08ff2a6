"""The checkout's delivery choice read from a Shopify order, the tenant's method table, and the
parcel's box (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.domain.shipping.delivery import (
    CheckoutDelivery,
    ShippingMethodRule,
    checkout_delivery,
    choose_method,
    parcel_dimensions,
)
from forma3d.domain.tenants import TenantSettings


def order(**fields: Any) -> ShopifyOrder:
    return ShopifyOrder.model_validate({
        "id": 1, "name": "#1001", "line_items": [{"id": 2, "sku": "A", "quantity": 1}],
        **fields})


def test_the_first_shipping_line_and_a_picked_point_make_the_delivery() -> None:
    got = order(shipping_lines=[{"code": "SP-DHL", "title": "Service Point Delivery DHL",
                                 "price": "3.95"}, {"code": "other"}],
                note_attributes=[{"name": "gift", "value": "yes"},
                                 {"name": "Point_ID", "value": " 10875349 "},
                                 {"name": "to_post_number", "value": "1338"}]).delivery
    assert got == CheckoutDelivery(method_code="SP-DHL", method_title="Service Point Delivery DHL",
                                   service_point_id="10875349", post_number="1338")


def test_our_own_attribute_name_wins_and_odd_values_ship_home() -> None:
    both = checkout_delivery([], [{"name": "point_id", "value": "1"},
                                  {"name": "sendcloud_service_point_id", "value": "2"}])
    assert both.service_point_id == "2"
    odd = checkout_delivery([], [{"name": "point_id", "value": "1; DROP TABLE"}])
    assert odd.service_point_id is None and odd.empty


def test_orders_without_lines_or_attributes_have_an_empty_delivery() -> None:
    assert order().delivery.empty
    assert order(shipping_lines=None, note_attributes=None).delivery.empty
    # Junk in these lists never refuses the order.
    assert order(shipping_lines=["x", {"title": "Standard"}], note_attributes=[{"value": 3}],
                 ).delivery == CheckoutDelivery(method_title="Standard")


def test_a_rule_matches_the_code_first_then_the_title_without_case() -> None:
    express = ShippingMethodRule(checkout="express", shipping_method_id=1317)
    pickup = ShippingMethodRule(checkout="Service Point Delivery DHL",
                                shipping_option_code="dhl:servicepoint")
    rules = [express, pickup]
    assert choose_method(rules, CheckoutDelivery(method_code="EXPRESS",
                                                 method_title="Service Point Delivery DHL")) \
        is express
    assert choose_method(rules, CheckoutDelivery(method_code="sp",
                                                 method_title="service point delivery dhl")) \
        is pickup
    assert choose_method(rules, CheckoutDelivery(method_title="Standard")) is None
    assert choose_method(rules, CheckoutDelivery()) is None


def test_the_tenant_table_is_validated() -> None:
    with pytest.raises(ValidationError, match="maps to no Sendcloud method"):
        TenantSettings.model_validate({"shipping_methods": [{"checkout": "Express"}]})
    with pytest.raises(ValidationError, match="mapped twice"):
        TenantSettings.model_validate({"shipping_methods": [
            {"checkout": "Express", "shipping_method_id": 1},
            {"checkout": "EXPRESS ", "shipping_option_code": "dpd:home"}]})
    with pytest.raises(ValidationError, match="parcel_dimensions_cm"):
        TenantSettings.model_validate({"parcel_dimensions_cm": [10, 0, 5]})
    settings = TenantSettings.model_validate({
        "shipping_methods": [{"checkout": "Express", "shipping_method_id": 1317}],
        "parcel_dimensions_cm": ["25", "15", "5"]})
    assert settings.parcel_dimensions_cm == (Decimal(25), Decimal(15), Decimal(5))


def test_the_parcel_takes_the_largest_box_else_the_default() -> None:
    small = (Decimal(10), Decimal(10), Decimal(10))
    long = (Decimal(60), Decimal(10), Decimal(5))  # 3000 cm3 beats 1000 cm3
    default = (Decimal(25), Decimal(15), Decimal(5))
    assert parcel_dimensions([small, None, long], default) == long
    assert parcel_dimensions([None], default) == default
    assert parcel_dimensions([], None) is None
