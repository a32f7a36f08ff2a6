"""Stock-batch lifecycle and the vocabulary of ledger entries.

A ledger entry's type says why stock changed and fixes which way it may move: PRODUCED only adds,
CONSUMED and SCRAPPED only remove, ADJUSTED (an operator correction with a reason, or giving back
stock consumed by a cancelled order) goes either way. Entries are never edited; a mistake is
corrected by another ADJUSTED entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from forma3d.domain.statemachine import StateMachine


class StockBatchStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class LedgerType(StrEnum):
    PRODUCED = "PRODUCED"
    CONSUMED = "CONSUMED"
    ADJUSTED = "ADJUSTED"
    SCRAPPED = "SCRAPPED"


class Direction(StrEnum):
    IN = "IN"
    OUT = "OUT"


class ReferenceType(StrEnum):
    """What a ledger entry points at, so every stock change can be traced to its cause."""

    STOCK_BATCH = "STOCK_BATCH"
    PRINT_JOB = "PRINT_JOB"
    ORDER = "ORDER"
    MANUAL = "MANUAL"


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

ALLOWED_DIRECTIONS: Mapping[LedgerType, frozenset[Direction]] = MappingProxyType(
    {
        LedgerType.PRODUCED: frozenset({Direction.IN}),
        LedgerType.CONSUMED: frozenset({Direction.OUT}),
        LedgerType.ADJUSTED: frozenset({Direction.IN, Direction.OUT}),
        LedgerType.SCRAPPED: frozenset({Direction.OUT}),
    }
)


def check_direction(kind: LedgerType, direction: Direction) -> None:
    """Raise ValueError when a ledger type moves stock the wrong way (e.g. SCRAPPED IN)."""
    if direction not in ALLOWED_DIRECTIONS[kind]:
        raise ValueError(f"ledger: {kind.value} entries cannot be {direction.value}")
