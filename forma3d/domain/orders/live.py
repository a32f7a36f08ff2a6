"""How a live store's order is handled before and while it prints (pure, no I/O): whether its
payment lets it print, which line items are not prints, and what an edit or a refund changes.

Quantities are absolute, never deltas, so a redelivered or reordered webhook (Shopify sends an
edit's `orders/updated` and a refund's `refunds/create` in either order) changes nothing twice:
a line item makes `min(what Shopify says is current, ordered - refunded)` units.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

PAID = frozenset({"paid", "partially_paid", "partially_refunded"})


class Payment(StrEnum):
    PRINT = "print"
    WAIT = "wait"
    VOID = "void"


def payment_decision(financial_status: str | None, *, print_authorized: bool) -> Payment:
    """Print once paid (or authorized, when the tenant prints authorized orders); a voided
    payment cancels the order; anything else (pending, expired, refunded...) waits. No status at
    all (an older payload, or a manual order stated as paid) prints."""
    if financial_status is None or financial_status in PAID:
        return Payment.PRINT
    if financial_status == "authorized" and print_authorized:
        return Payment.PRINT
    if financial_status == "voided":
        return Payment.VOID
    return Payment.WAIT


def awaiting_reason(financial_status: str | None) -> str:
    return f"awaiting payment (financial_status {financial_status or 'unknown'})"


def skip_reason(sku: str | None, requires_shipping: bool,
                ignore_patterns: Sequence[str]) -> str | None:
    """Why a line item is not a print, or None when it is: nothing to ship (a gift card,
    shipping protection), or a SKU matching one of the tenant's patterns (shell-style, `*` and
    `?`, case-insensitive)."""
    if not requires_shipping:
        return "not a print: the item needs no shipping"
    text = (sku or "").upper()
    for pattern in ignore_patterns:
        if fnmatch.fnmatchcase(text, pattern.upper()):
            return f"not a print: SKU {sku or '(none)'} matches the ignore pattern {pattern!r}"
    return None


def units_to_make(ordered: int, current: int | None, refunded: int) -> int:
    """The units a line item makes: what Shopify says is current (after edits and refunds),
    never more than ordered minus refunded."""
    base = ordered if current is None else min(current, ordered)
    return max(0, min(base, ordered - refunded))


@dataclass(frozen=True, slots=True)
class LineChange:
    """One line item of an edit: `before` -> `after` units (0 before: added; 0 after: removed)."""

    shopify_line_item_id: int
    sku: str | None
    before: int
    after: int

    @property
    def kind(self) -> str:
        if self.before == 0:
            return "added"
        return "removed" if self.after == 0 else "changed"

    def describe(self) -> str:
        what = self.sku or str(self.shopify_line_item_id)
        if self.kind == "added":
            return f"{what} added ({self.after})"
        if self.kind == "removed":
            return f"{what} removed"
        return f"{what} {self.before} -> {self.after}"


def copies_beyond(parts: Iterable[tuple[str, int]], units: int) -> dict[str, int]:
    """Per part id, the highest copy number `units` units need (part quantity x units); jobs
    with a higher copy number are no longer needed."""
    return {part_id: per_unit * units for part_id, per_unit in parts}
