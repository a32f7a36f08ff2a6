"""The stock ledger: immutable entries whose signed sum is the stock level.

Stock is never stored as a number that handlers overwrite; it is the sum of entries, so every
unit on the shelf can be traced to a batch, an order or an operator.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from forma3d.domain.inventory.states import Direction, LedgerType, ReferenceType, check_direction


class InsufficientStock(ValueError):
    """An OUT entry larger than the stock on hand."""

    def __init__(self, product_id: str, level: int, quantity: int) -> None:
        self.product_id = product_id
        self.level = level
        self.quantity = quantity
        super().__init__(f"ledger: {product_id} has {level} in stock, cannot take {quantity}")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One stock change; `quantity` is positive, `direction` gives the sign."""

    product_id: str
    kind: LedgerType
    direction: Direction
    quantity: int
    reference_type: ReferenceType = ReferenceType.MANUAL
    reference_id: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValueError(f"ledger: quantity {self.quantity} < 1")
        check_direction(self.kind, self.direction)
        manual = self.kind == LedgerType.ADJUSTED and self.reference_type == ReferenceType.MANUAL
        if manual and not self.reason:
            raise ValueError("ledger: a manual adjustment needs a reason")

    @property
    def delta(self) -> int:
        return self.quantity if self.direction == Direction.IN else -self.quantity


def stock_level(entries: Iterable[LedgerEntry]) -> int:
    """Stock of one product: the signed sum of its entries."""
    return sum(e.delta for e in entries)


def stock_levels(entries: Iterable[LedgerEntry]) -> dict[str, int]:
    """Stock per product over a mixed ledger."""
    levels: defaultdict[str, int] = defaultdict(int)
    for entry in entries:
        levels[entry.product_id] += entry.delta
    return dict(levels)


def apply_entry(level: int, entry: LedgerEntry) -> int:
    """The level after `entry`; refuses to take out more than is on hand."""
    after = level + entry.delta
    if after < 0:
        raise InsufficientStock(entry.product_id, level, entry.quantity)
    return after
