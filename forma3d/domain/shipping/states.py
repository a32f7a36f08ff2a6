"""Shipment lifecycle, and Sendcloud's numeric parcel status ids mapped onto it.

Our statuses mean:
- PENDING: no usable label yet (not created at Sendcloud, 999 "No label", 1001 "Being announced").
- LABEL_CREATED: 1000 "Ready to send": label and tracking number exist, carrier not yet scanned.
- ANNOUNCED: the carrier has the parcel data (1, 13).
- IN_TRANSIT: any carrier milestone on the way, including "awaiting customer pickup" (12),
  which is not yet a delivery.
- DELIVERED: 11, 93. EXCEPTION: needs an operator (failed delivery, lost, refused, returned to
  sender, failed cancellation...). CANCEL_REQUESTED: 1999, 2001. CANCELLED: 2000, 1998.
- FAILED: the announcement failed (1002) or we could not create the parcel; an operator retries.

Carrier statuses arrive late, twice and out of order, and the carrier may skip milestones, so:
- forward skips are allowed (PENDING -> DELIVERED is fine: we just missed the steps between);
- EXCEPTION is recoverable (a failed delivery attempt is followed by another attempt);
- CANCEL_REQUESTED can still be overtaken by the carrier (cancellation arrives too late);
- going back along PENDING < LABEL_CREATED < ANNOUNCED < IN_TRANSIT < DELIVERED is not a
  transition, and DELIVERED / CANCELLED are terminal. `apply_carrier_status` treats such a
  backward report as a stale message and keeps the current state instead of raising.
Ids without a lifecycle meaning (1337 "Unknown", 62993-62995 "changed" notices) and ids we have
never seen map to None: callers keep the current state and log the id; nothing crashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from forma3d.domain.statemachine import StateMachine


class ShipmentStatus(StrEnum):
    PENDING = "PENDING"
    LABEL_CREATED = "LABEL_CREATED"
    ANNOUNCED = "ANNOUNCED"
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    EXCEPTION = "EXCEPTION"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


_S = ShipmentStatus
SHIPMENT_MACHINE: StateMachine[ShipmentStatus] = StateMachine(
    "shipment",
    ShipmentStatus,
    {
        _S.PENDING: {
            _S.LABEL_CREATED,
            _S.ANNOUNCED,
            _S.IN_TRANSIT,
            _S.DELIVERED,
            _S.EXCEPTION,
            _S.CANCEL_REQUESTED,
            _S.CANCELLED,
            _S.FAILED,
        },
        _S.LABEL_CREATED: {
            _S.ANNOUNCED,
            _S.IN_TRANSIT,
            _S.DELIVERED,
            _S.EXCEPTION,
            _S.CANCEL_REQUESTED,
            _S.CANCELLED,
        },
        _S.ANNOUNCED: {
            _S.IN_TRANSIT,
            _S.DELIVERED,
            _S.EXCEPTION,
            _S.CANCEL_REQUESTED,
            _S.CANCELLED,
        },
        _S.IN_TRANSIT: {_S.DELIVERED, _S.EXCEPTION, _S.CANCEL_REQUESTED, _S.CANCELLED},
        _S.EXCEPTION: {
            _S.ANNOUNCED,
            _S.IN_TRANSIT,
            _S.DELIVERED,
            _S.CANCEL_REQUESTED,
            _S.CANCELLED,
        },
        _S.CANCEL_REQUESTED: {
            _S.ANNOUNCED,
            _S.IN_TRANSIT,
            _S.DELIVERED,
            _S.EXCEPTION,
            _S.CANCELLED,
        },
        # An operator retry starts over (PENDING) or lands directly on a new label.
        _S.FAILED: {_S.PENDING, _S.LABEL_CREATED, _S.CANCELLED},
        _S.DELIVERED: set(),
        _S.CANCELLED: set(),
    },
    initial=_S.PENDING,
)


SENDCLOUD_STATUS_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        999: "No label",
        1000: "Ready to send",
        1001: "Being announced",
        1002: "Announcement failed",
        1: "Announced",
        13: "Announced: not collected",
        15: "Error collecting",
        22: "Shipment picked up by driver",
        3: "En route to sorting center",
        7: "Being sorted",
        5: "Sorted",
        6: "Not sorted",
        4: "Delivery delayed",
        91: "Parcel en route",
        92: "Driver en route",
        8: "Delivery attempt failed",
        12: "Awaiting customer pickup",
        11: "Delivered",
        93: "Shipment collected by customer",
        80: "Unable to deliver",
        94: "Parcel cancellation failed.",
        1337: "Unknown status - check carrier track & trace page for more insights",
        1999: "Cancellation requested",
        2001: "Submitting cancellation request",
        1998: "Cancelled upstream",
        2000: "Cancelled",
        62989: "At customs",
        62990: "At sorting centre",
        62991: "Refused by recipient",
        62992: "Returned to sender",
        62993: "Delivery method changed",
        62994: "Delivery date changed",
        62995: "Delivery address changed",
        62996: "Exception (lost, damaged, destroyed…)",
        62997: "Address invalid",
    }
)
"""Sendcloud v2 parcel status ids and their messages (GET /parcels/statuses)."""

_SENDCLOUD_TO_STATUS: Mapping[int, ShipmentStatus] = MappingProxyType(
    {
        999: _S.PENDING,
        1001: _S.PENDING,
        1000: _S.LABEL_CREATED,
        1002: _S.FAILED,
        1: _S.ANNOUNCED,
        13: _S.ANNOUNCED,
        22: _S.IN_TRANSIT,
        3: _S.IN_TRANSIT,
        7: _S.IN_TRANSIT,
        5: _S.IN_TRANSIT,
        4: _S.IN_TRANSIT,
        91: _S.IN_TRANSIT,
        92: _S.IN_TRANSIT,
        12: _S.IN_TRANSIT,
        62989: _S.IN_TRANSIT,
        62990: _S.IN_TRANSIT,
        11: _S.DELIVERED,
        93: _S.DELIVERED,
        15: _S.EXCEPTION,
        6: _S.EXCEPTION,
        8: _S.EXCEPTION,
        80: _S.EXCEPTION,
        94: _S.EXCEPTION,
        62991: _S.EXCEPTION,
        62992: _S.EXCEPTION,
        62996: _S.EXCEPTION,
        62997: _S.EXCEPTION,
        1999: _S.CANCEL_REQUESTED,
        2001: _S.CANCEL_REQUESTED,
        1998: _S.CANCELLED,
        2000: _S.CANCELLED,
    }
)


def status_from_sendcloud(status_id: int) -> ShipmentStatus | None:
    """Our status for a Sendcloud parcel status id, or None when the id carries no lifecycle
    meaning or is unknown (keep the current state, log the id)."""
    return _SENDCLOUD_TO_STATUS.get(status_id)


def apply_carrier_status(current: ShipmentStatus, status_id: int) -> ShipmentStatus:
    """The shipment status after a Sendcloud report; never raises on carrier input.

    Unknown ids, replays, and reports the table does not allow from `current` (late, earlier
    milestones; anything after a terminal state) leave `current` unchanged. The caller compares
    the result with `current` to decide whether to store, emit an event, or log a skipped id.
    """
    return advance(current, status_from_sendcloud(status_id))


def advance(current: ShipmentStatus, incoming: ShipmentStatus | None) -> ShipmentStatus:
    """The status after a carrier report that means `incoming` (None: no lifecycle meaning):
    `incoming` when the machine allows the move, else `current` (stale, replayed or unknown)."""
    if incoming is None or not SHIPMENT_MACHINE.can(current, incoming):
        return current
    return incoming


# Sendcloud API v3 reports a parcel's status as a string code (GET /parcels/statuses, and
# `parcels[].status.code` of a shipment). Codes seen in the v3 document and its examples,
# mapped once here like the v2 ids; unknown codes map to None (keep the state, log the code).
_SENDCLOUD_V3_TO_STATUS: Mapping[str, ShipmentStatus] = MappingProxyType(
    {
        "NO_LABEL": _S.PENDING,
        "ANNOUNCING": _S.PENDING,
        "READY_TO_SEND": _S.LABEL_CREATED,
        "ANNOUNCEMENT_FAILED": _S.FAILED,
        "ANNOUNCED": _S.ANNOUNCED,
        "IN_TRANSIT": _S.IN_TRANSIT,
        "DELIVERED": _S.DELIVERED,
        "CANCELLATION_REQUESTED": _S.CANCEL_REQUESTED,
        "CANCELLED": _S.CANCELLED,
    }
)


def status_from_sendcloud_code(code: str | None) -> ShipmentStatus | None:
    """Our status for a Sendcloud v3 parcel status code, or None when unknown."""
    return _SENDCLOUD_V3_TO_STATUS.get((code or "").upper())
