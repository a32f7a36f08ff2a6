"""What Shopify's fulfilment is told as the parcel travels (pure, no I/O).

Shopify sets a fulfilment's shipment status through fulfillment events (`in_transit`,
`out_for_delivery`, `ready_for_pickup`, `attempted_delivery`, `delivered`, `failure`, ...).
Sendcloud's v2 status ids map onto them one by one where the meaning is the same; v3 reports only
coarse codes, so its statuses map through ours. Anything else (labels, announcements,
cancellations) tells Shopify nothing: None.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from forma3d.domain.shipping.states import ShipmentStatus

_BY_SENDCLOUD_ID: Mapping[int, str] = MappingProxyType({
    22: "in_transit", 3: "in_transit", 5: "in_transit", 7: "in_transit", 91: "in_transit",
    62989: "in_transit", 62990: "in_transit",
    92: "out_for_delivery",
    12: "ready_for_pickup",
    8: "attempted_delivery",
    11: "delivered", 93: "delivered",
    80: "failure", 62991: "failure", 62992: "failure", 62996: "failure", 62997: "failure",
})
_BY_STATUS: Mapping[ShipmentStatus, str] = MappingProxyType({
    ShipmentStatus.IN_TRANSIT: "in_transit",
    ShipmentStatus.DELIVERED: "delivered",
})


def shopify_shipment_status(status: ShipmentStatus, sendcloud_status_id: int | None,
                            ) -> str | None:
    """The Shopify fulfillment event status for a shipment now `status` whose last Sendcloud
    status id (v2) was `sendcloud_status_id`; None when Shopify need not hear of it. Delivered
    wins whatever the id said, so a delivery is never left untold."""
    if status == ShipmentStatus.DELIVERED:
        return "delivered"
    if status in (ShipmentStatus.CANCELLED, ShipmentStatus.CANCEL_REQUESTED,
                  ShipmentStatus.FAILED, ShipmentStatus.PENDING):
        return None
    if sendcloud_status_id is not None and sendcloud_status_id in _BY_SENDCLOUD_ID:
        return _BY_SENDCLOUD_ID[sendcloud_status_id]
    return _BY_STATUS.get(status)
