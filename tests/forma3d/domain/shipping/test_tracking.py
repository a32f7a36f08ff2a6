"""What Shopify's fulfilment is told as the parcel travels (pure)."""

from __future__ import annotations

import pytest

from forma3d.domain.shipping.states import ShipmentStatus as S
from forma3d.domain.shipping.tracking import shopify_shipment_status


@pytest.mark.parametrize(("status", "status_id", "shopify"), [
    (S.IN_TRANSIT, 3, "in_transit"),
    (S.IN_TRANSIT, 92, "out_for_delivery"),
    (S.IN_TRANSIT, 12, "ready_for_pickup"),
    (S.EXCEPTION, 8, "attempted_delivery"),
    (S.EXCEPTION, 80, "failure"),
    (S.DELIVERED, 11, "delivered"),
    (S.DELIVERED, 93, "delivered"),
    (S.DELIVERED, None, "delivered"),  # v3: codes only
    (S.IN_TRANSIT, None, "in_transit"),
    (S.LABEL_CREATED, 1000, None),
    (S.ANNOUNCED, 1, None),
    (S.CANCEL_REQUESTED, 1999, None),
    (S.CANCELLED, 3, None),  # a late carrier id after a cancellation tells Shopify nothing
    (S.EXCEPTION, None, None),
])
def test_carrier_statuses_map_to_shopify_fulfillment_events(
        status: S, status_id: int | None, shopify: str | None) -> None:
    assert shopify_shipment_status(status, status_id) == shopify
