"""The pure rules of live orders: payment, what is not a print, units after edits and refunds."""

from __future__ import annotations

import pytest

from forma3d.domain.orders.live import (
    LineChange,
    Payment,
    copies_beyond,
    payment_decision,
    skip_reason,
    units_to_make,
)
from forma3d.domain.orders.progress import LineItemState, derive_order_status
from forma3d.domain.orders.states import LineItemStatus as L
from forma3d.domain.orders.states import OrderStatus as OS
from forma3d.domain.tenants import TenantSettings


@pytest.mark.parametrize(("status", "authorized", "expected"), [
    ("paid", False, Payment.PRINT),
    ("partially_refunded", False, Payment.PRINT),
    (None, False, Payment.PRINT),
    ("pending", False, Payment.WAIT),
    ("authorized", False, Payment.WAIT),
    ("authorized", True, Payment.PRINT),
    ("expired", True, Payment.WAIT),
    ("refunded", False, Payment.WAIT),
    ("voided", True, Payment.VOID),
])
def test_payment_decides_whether_an_order_prints(status: str | None, authorized: bool,
                                                 expected: Payment) -> None:
    assert payment_decision(status, print_authorized=authorized) == expected


def test_items_that_need_no_shipping_or_match_a_pattern_are_not_prints() -> None:
    patterns = ["GIFT-*", "tip", "SHIP?-PROTECT"]
    assert skip_reason("BENCHY-PLA-RED", True, patterns) is None
    assert skip_reason("BENCHY-PLA-RED", False, patterns) == \
        "not a print: the item needs no shipping"
    assert "'GIFT-*'" in (skip_reason("gift-card-25", True, patterns) or "")
    assert "'tip'" in (skip_reason("TIP", True, patterns) or "")
    assert skip_reason("TIPS", True, patterns) is None
    assert skip_reason("SHIPS-PROTECT", True, patterns) is not None
    assert skip_reason(None, True, ["*"]) is not None


def test_ignore_patterns_are_validated_as_tenant_settings() -> None:
    assert TenantSettings(ignored_sku_patterns=[" GIFT-* "]).ignored_sku_patterns == ["GIFT-*"]
    with pytest.raises(ValueError, match="1 to 128 characters"):
        TenantSettings(ignored_sku_patterns=["  "])


@pytest.mark.parametrize(("ordered", "current", "refunded", "units"), [
    (3, None, 0, 3), (3, 2, 0, 2), (3, 0, 0, 0),
    (3, 2, 1, 2),  # the refund's lowered current quantity and its count agree
    (3, 3, 1, 2),  # an orders/updated older than the refund does not undo it
    (3, 5, 0, 3),  # never more than bought
])
def test_units_follow_the_lowest_of_current_and_unrefunded(ordered: int, current: int | None,
                                                           refunded: int, units: int) -> None:
    assert units_to_make(ordered, current, refunded) == units


def test_line_changes_are_described_for_operators() -> None:
    assert LineChange(1, "A", 0, 2).describe() == "A added (2)"
    assert LineChange(1, "A", 2, 0).kind == "removed"
    assert LineChange(1, None, 2, 1).describe() == "1 2 -> 1"
    assert copies_beyond([("p", 3), ("q", 1)], 2) == {"p": 6, "q": 2}


def _items(*statuses: L) -> list[LineItemState]:
    return [LineItemState(str(n), f"S{n}", s) for n, s in enumerate(statuses)]


def test_skipped_items_never_hold_or_block_an_order() -> None:
    assert derive_order_status(_items(L.PRINTED, L.SKIPPED)).status == OS.READY_FOR_FULFILLMENT
    assert derive_order_status(_items(L.PRINTING, L.SKIPPED)).status == OS.PROCESSING
    only = derive_order_status(_items(L.SKIPPED))
    assert only.status == OS.PENDING and "nothing to print" in (only.reason or "")
    gone = derive_order_status(_items(L.CANCELLED, L.SKIPPED))
    assert gone.status == OS.CANCELLED
    held = derive_order_status(_items(L.PRINTING), operator_hold="check address")
    assert (held.status, held.reason) == (OS.ON_HOLD, "check address")
