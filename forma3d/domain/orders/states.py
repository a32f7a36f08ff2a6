"""Order and line-item lifecycles as transition tables.

Order: PENDING -> PROCESSING -> READY_FOR_FULFILLMENT -> FULFILLED, with ON_HOLD (needs a mapping
or an operator), FAILED and CANCELLED. Choices beyond the design page, with reasons:
- PENDING -> READY_FOR_FULFILLMENT: every line item came from stock, nothing to print.
- FAILED -> PROCESSING is "order revival": requeueing a failed job brings the order back.
  FAILED -> ON_HOLD / READY_FOR_FULFILLMENT cover the remaining paths of the derived status
  (the failed line item is retried straight to done, or dropped by an order edit).
- ON_HOLD <-> READY_FOR_FULFILLMENT: an operator may hold a printed order (bad address) and
  release it; ON_HOLD -> FAILED: a held order's GridFlock pipeline can still fail.
- FULFILLED and CANCELLED are terminal: a cancelled Shopify order is never revived.
- AWAITING_PAYMENT: an order not paid yet (Shopify's financial_status) waits before anything
  is expanded or printed; payment moves it to PENDING, a voided payment cancels it, an operator
  may hold it (and a release of an unpaid order returns it here).

Line item: SKIPPED is not a print (a gift card, shipping protection: no shipping needed, or a SKU
matching the tenant's ignore patterns); it never holds its order and leaves only with it.
FROM_STOCK means every unit came from stock (done, counts as completed); a partly
stocked line item is PRINTING for the rest. PRINTED -> CANCELLED because an order can be
cancelled after printing (the parts go to stock or scrap, recorded in the ledger).
"""

from __future__ import annotations

from enum import StrEnum

from forma3d.domain.statemachine import StateMachine


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    PROCESSING = "PROCESSING"
    READY_FOR_FULFILLMENT = "READY_FOR_FULFILLMENT"
    FULFILLED = "FULFILLED"
    ON_HOLD = "ON_HOLD"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class LineItemStatus(StrEnum):
    PENDING = "PENDING"
    NEEDS_MAPPING = "NEEDS_MAPPING"
    SKIPPED = "SKIPPED"
    GENERATING = "GENERATING"
    FROM_STOCK = "FROM_STOCK"
    PRINTING = "PRINTING"
    PRINTED = "PRINTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


_O = OrderStatus
ORDER_MACHINE: StateMachine[OrderStatus] = StateMachine(
    "order",
    OrderStatus,
    {
        _O.PENDING: {_O.AWAITING_PAYMENT, _O.PROCESSING, _O.READY_FOR_FULFILLMENT, _O.ON_HOLD,
                     _O.FAILED, _O.CANCELLED},
        _O.AWAITING_PAYMENT: {_O.PENDING, _O.ON_HOLD, _O.CANCELLED},
        _O.PROCESSING: {_O.READY_FOR_FULFILLMENT, _O.ON_HOLD, _O.FAILED, _O.CANCELLED},
        _O.READY_FOR_FULFILLMENT: {_O.FULFILLED, _O.ON_HOLD, _O.CANCELLED},
        _O.ON_HOLD: {
            _O.PENDING,
            _O.AWAITING_PAYMENT,
            _O.PROCESSING,
            _O.READY_FOR_FULFILLMENT,
            _O.FAILED,
            _O.CANCELLED,
        },
        _O.FAILED: {_O.PROCESSING, _O.ON_HOLD, _O.READY_FOR_FULFILLMENT, _O.CANCELLED},
        _O.FULFILLED: set(),
        _O.CANCELLED: set(),
    },
    initial=_O.PENDING,
)

_L = LineItemStatus
LINE_ITEM_MACHINE: StateMachine[LineItemStatus] = StateMachine(
    "line item",
    LineItemStatus,
    {
        _L.PENDING: {
            _L.NEEDS_MAPPING,
            _L.SKIPPED,
            _L.GENERATING,
            _L.FROM_STOCK,
            _L.PRINTING,
            _L.PRINTED,
            _L.FAILED,
            _L.CANCELLED,
        },
        _L.NEEDS_MAPPING: {
            _L.PENDING,
            _L.SKIPPED,
            _L.GENERATING,
            _L.FROM_STOCK,
            _L.PRINTING,
            _L.FAILED,
            _L.CANCELLED,
        },
        _L.GENERATING: {_L.PENDING, _L.PRINTING, _L.FAILED, _L.CANCELLED},
        _L.SKIPPED: {_L.CANCELLED},
        _L.FROM_STOCK: {_L.CANCELLED},
        _L.PRINTING: {_L.PRINTED, _L.FAILED, _L.CANCELLED},
        # Reconciliation may see a requeued job only once it has completed: FAILED -> PRINTED.
        _L.FAILED: {_L.PENDING, _L.GENERATING, _L.PRINTING, _L.PRINTED, _L.CANCELLED},
        _L.PRINTED: {_L.CANCELLED},
        _L.CANCELLED: set(),
    },
    initial=_L.PENDING,
)

DONE_LINE_ITEM_STATUSES = frozenset({_L.PRINTED, _L.FROM_STOCK})
"""Line items whose parts are all available for the parcel."""
NOT_PRINTED = frozenset({_L.CANCELLED, _L.SKIPPED})
"""Line items that neither hold their order nor go in its parcel."""
