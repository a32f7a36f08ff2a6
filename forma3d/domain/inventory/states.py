"""Stock-batch lifecycle and the vocabulary of the stock ledger.

The ledger's rules (which way each entry type may move, what it does to on-hand and reserved
units, when a reason is required) live in one table, `ledger.RULES`.
"""

from __future__ import annotations

from enum import StrEnum

from forma3d.domain.statemachine import StateMachine


class StockBatchStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class BatchOrigin(StrEnum):
    MANUAL = "MANUAL"  # an operator asked for it
    REPLENISHMENT = "REPLENISHMENT"  # the scheduler found the product below its minimum


class LedgerType(StrEnum):
    PRODUCED = "PRODUCED"  # a stock batch finished: units onto the shelf
    CONSUMED = "CONSUMED"  # an order shipped with reserved units: they leave the shelf
    RESERVED = "RESERVED"  # an order took units: still on the shelf, no longer available
    RELEASED = "RELEASED"  # a reservation given back (order cancelled): available again
    ADJUSTED = "ADJUSTED"  # an operator's count correction, with a reason
    SCRAPPED = "SCRAPPED"  # units thrown away, with a reason
    RETURNED = "RETURNED"  # parts printed for a cancelled order put on the shelf


class Direction(StrEnum):
    IN = "IN"
    OUT = "OUT"


class ReferenceType(StrEnum):
    """What a ledger entry points at, so every movement can be traced to its cause."""

    ORDER = "ORDER"
    LINE_ITEM = "LINE_ITEM"
    STOCK_BATCH = "STOCK_BATCH"
    USER = "USER"


STOCK_BATCH_MACHINE: StateMachine[StockBatchStatus] = StateMachine(
    "stock batch",
    StockBatchStatus,
    {
        StockBatchStatus.IN_PROGRESS: {StockBatchStatus.COMPLETED, StockBatchStatus.CANCELLED},
        StockBatchStatus.COMPLETED: set(),
        StockBatchStatus.CANCELLED: set(),
    },
    initial=StockBatchStatus.IN_PROGRESS,
)
