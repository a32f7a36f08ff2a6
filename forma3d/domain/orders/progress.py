"""Order progress: part counts, a line item's status from its jobs, and the order's status
derived from its line items.

Deriving the order status from the line items (instead of nudging it from each handler) makes
every handler idempotent: recompute, compare, and store only when something changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from forma3d.domain.orders.states import (
    DONE_LINE_ITEM_STATUSES,
    NOT_PRINTED,
    ORDER_MACHINE,
    LineItemStatus,
    OrderStatus,
)
from forma3d.domain.printing.states import ACTIVE_JOB_STATUSES, PrintJobStatus


@dataclass(frozen=True, slots=True)
class PartCounts:
    """Printed-or-stocked parts against parts needed, on a line item or a whole order."""

    total: int = 0
    completed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.completed <= self.total:
            raise ValueError(f"part counts: completed {self.completed} not in 0..{self.total}")

    def __add__(self, other: PartCounts) -> PartCounts:
        return PartCounts(self.total + other.total, self.completed + other.completed)

    @property
    def is_complete(self) -> bool:
        return self.total > 0 and self.completed == self.total

    @property
    def percent(self) -> int:
        """Whole percent done, rounded down so 100 only shows when really complete."""
        return 0 if self.total == 0 else self.completed * 100 // self.total


def line_item_parts(
    quantity: int, parts_per_unit: int, *, from_stock: int = 0, completed_jobs: int = 0
) -> PartCounts:
    """Part counts of a line item: units taken from stock count as completed parts."""
    if not 0 <= from_stock <= quantity:
        raise ValueError(f"line item: from_stock {from_stock} not in 0..{quantity}")
    return PartCounts(parts_per_unit * quantity, parts_per_unit * from_stock + completed_jobs)


def order_parts(items: Iterable[PartCounts]) -> PartCounts:
    return sum(items, PartCounts())


def line_item_status_from_jobs(jobs: Iterable[PrintJobStatus]) -> LineItemStatus:
    """A printing line item's status from its jobs.

    A job cancelled outside an order cancellation (operator, printer) leaves the line item short
    of parts, so it counts as FAILED and stays visible until requeued; the order-cancellation flow
    sets CANCELLED on line items itself. Raises on no jobs: the caller knows whether that means
    "not expanded yet" or "all from stock".
    """
    statuses = list(jobs)
    if not statuses:
        raise ValueError("line item: no print jobs to derive a status from")
    if any(s in (PrintJobStatus.FAILED, PrintJobStatus.CANCELLED) for s in statuses):
        return LineItemStatus.FAILED
    if any(s in ACTIVE_JOB_STATUSES for s in statuses):
        return LineItemStatus.PRINTING
    return LineItemStatus.PRINTED


@dataclass(frozen=True, slots=True)
class LineItemState:
    """What the order rules need to know about one line item."""

    line_item_id: str
    sku: str
    status: LineItemStatus


@dataclass(frozen=True, slots=True)
class DerivedOrderStatus:
    status: OrderStatus
    reason: str | None = None


def _describe(items: Iterable[LineItemState]) -> str:
    return ", ".join(f"{i.sku} ({i.line_item_id})" for i in items)


def derive_order_status(
    items: Sequence[LineItemState], *, operator_hold: str | None = None
) -> DerivedOrderStatus:
    """The order status its line items imply (never FULFILLED: that follows the shipment).

    Precedence: all cancelled -> CANCELLED; an operator hold -> ON_HOLD; any failed -> FAILED;
    any needing a mapping -> ON_HOLD; all printed or from stock -> READY_FOR_FULFILLMENT;
    all pending -> PENDING; otherwise PROCESSING. Cancelled line items (order edits, refunds) are
    ignored while others remain; skipped ones (not prints) are ignored throughout: an order left
    with only skipped items is CANCELLED when its prints were cancelled, and one that never had
    a print stays PENDING with that reason (nothing for the farm to make or ship).
    """
    if not items:
        return DerivedOrderStatus(OrderStatus.PENDING)
    kept = [i for i in items if i.status != LineItemStatus.CANCELLED]
    if not kept:
        return DerivedOrderStatus(OrderStatus.CANCELLED, "all line items cancelled")
    if operator_hold:
        return DerivedOrderStatus(OrderStatus.ON_HOLD, operator_hold)
    live = [i for i in kept if i.status not in NOT_PRINTED]
    if not live and len(kept) < len(items):
        return DerivedOrderStatus(OrderStatus.CANCELLED, "every line item to print was "
                                  "cancelled; the rest is not a print")
    if not live:
        return DerivedOrderStatus(OrderStatus.PENDING, "nothing to print or ship: every line "
                                  f"item is skipped ({_describe(kept)})")
    failed = [i for i in live if i.status == LineItemStatus.FAILED]
    if failed:
        return DerivedOrderStatus(OrderStatus.FAILED, f"line items failed: {_describe(failed)}")
    unmapped = [i for i in live if i.status == LineItemStatus.NEEDS_MAPPING]
    if unmapped:
        return DerivedOrderStatus(
            OrderStatus.ON_HOLD, f"no product mapping for: {_describe(unmapped)}; create "
            "one (POST /api/v1/product-mappings) and the order resumes by itself"
        )
    if all(i.status in DONE_LINE_ITEM_STATUSES for i in live):
        return DerivedOrderStatus(OrderStatus.READY_FOR_FULFILLMENT)
    if all(i.status == LineItemStatus.PENDING for i in live):
        return DerivedOrderStatus(OrderStatus.PENDING)
    return DerivedOrderStatus(OrderStatus.PROCESSING)


def next_order_status(current: OrderStatus, derived: OrderStatus) -> OrderStatus:
    """The status to store after recomputing `derived`; raises IllegalTransition on a bug.

    A terminal order (FULFILLED, CANCELLED) stays put: late job events change nothing. An order
    that already started does not go back to PENDING when a line item is reset; it is PROCESSING.
    An order awaiting payment leaves only by its payment, a hold or a cancellation.
    """
    if ORDER_MACHINE.is_terminal(current) or derived == current:
        return current
    if current == OrderStatus.AWAITING_PAYMENT and derived != OrderStatus.CANCELLED:
        return current
    if derived == OrderStatus.PENDING and not ORDER_MACHINE.can(current, derived):
        derived = OrderStatus.PROCESSING
        if derived == current:
            return current
    return ORDER_MACHINE.check(current, derived)


@dataclass(frozen=True, slots=True)
class JobCounts:
    """A line item's print jobs by outcome, as the order's recomputation counts them."""

    total: int
    done: int = 0
    failed: int = 0
    cancelled: int = 0


FAILED_LINE_ITEM_REASON = "print job failed after its last attempt"
_DECIDED_BY_JOBS = frozenset({LineItemStatus.PRINTING, LineItemStatus.PRINTED,
                              LineItemStatus.FAILED})


def line_item_status_from_counts(status: LineItemStatus,
                                 counts: JobCounts | None) -> LineItemStatus | None:
    """The status a line item's jobs imply, or None when its jobs do not decide it: not expanded
    yet, waiting for a mapping, taken from stock, or cancelled with its order."""
    if counts is None or status not in _DECIDED_BY_JOBS:
        return None
    if counts.failed or counts.cancelled:
        return LineItemStatus.FAILED
    return LineItemStatus.PRINTED if counts.done == counts.total else LineItemStatus.PRINTING
