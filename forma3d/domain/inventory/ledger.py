"""The stock ledger: immutable entries whose running sum is the stock of one product.

Stock is never a number that handlers overwrite. Each entry moves units of one product mapping
and the store keeps, on the entry itself, the balance it leads to (on hand and reserved), so
the level is the last entry's balance and always equals the sum of the entries before it.

On hand counts units on the shelf; reserved counts those promised to orders that have not
shipped; available = on hand - reserved. `RULES` is the one place saying which way each entry
type moves and what it does to both counts; `apply` refuses a balance that would take more than
is available (or release more than is reserved).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from forma3d.domain.inventory.states import Direction, LedgerType, ReferenceType


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry type: allowed directions, its sign on on-hand and on reserved units (per unit,
    for IN; OUT flips the on-hand sign of two-way types), and whether it needs a reason."""

    directions: frozenset[Direction]
    on_hand: int
    reserved: int
    needs_reason: bool = False


_IN, _OUT = frozenset({Direction.IN}), frozenset({Direction.OUT})
RULES: Mapping[LedgerType, Rule] = MappingProxyType({
    LedgerType.PRODUCED: Rule(_IN, +1, 0),
    LedgerType.RETURNED: Rule(_IN, +1, 0),
    LedgerType.ADJUSTED: Rule(_IN | _OUT, +1, 0, needs_reason=True),
    LedgerType.SCRAPPED: Rule(_OUT, -1, 0, needs_reason=True),
    LedgerType.RESERVED: Rule(_OUT, 0, +1),
    LedgerType.RELEASED: Rule(_IN, 0, -1),
    LedgerType.CONSUMED: Rule(_OUT, -1, -1),
})


class LedgerError(ValueError):
    """An entry the rules refuse (wrong direction, missing reason, not enough stock)."""


class InsufficientStock(LedgerError):
    def __init__(self, kind: LedgerType, quantity: int, balance: Balance) -> None:
        self.kind, self.quantity, self.balance = kind, quantity, balance
        super().__init__(
            f"stock: cannot record {kind.value} of {quantity} with {balance.on_hand} on hand, "
            f"{balance.reserved} reserved, {balance.available} available")


@dataclass(frozen=True, slots=True)
class Balance:
    """Stock of one product after some entries."""

    on_hand: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def __add__(self, other: Balance) -> Balance:
        return Balance(self.on_hand + other.on_hand, self.reserved + other.reserved)


def check(kind: LedgerType, direction: Direction, quantity: int, reason: str | None) -> Rule:
    """The rule for an entry, or LedgerError naming what is wrong with it."""
    rule = RULES[kind]
    if quantity < 1:
        raise LedgerError(f"ledger: quantity {quantity} < 1")
    if direction not in rule.directions:
        raise LedgerError(f"ledger: {kind.value} entries cannot be {direction.value}")
    if rule.needs_reason and not (reason or "").strip():
        raise LedgerError(f"ledger: a {kind.value} entry needs a reason")
    return rule


def delta(kind: LedgerType, direction: Direction, quantity: int,
          reason: str | None = "-") -> Balance:
    """What one entry does to the balance (validated by `check`)."""
    rule = check(kind, direction, quantity, reason)
    sign = -1 if direction == Direction.OUT and rule.directions == _IN | _OUT else 1
    return Balance(sign * rule.on_hand * quantity, rule.reserved * quantity)


def apply(balance: Balance, kind: LedgerType, direction: Direction, quantity: int,
          reason: str | None = "-") -> Balance:
    """The balance after the entry; InsufficientStock if it would leave reserved units below
    zero or above what is on hand (i.e. take more than is available)."""
    after = balance + delta(kind, direction, quantity, reason)
    if after.reserved < 0 or after.available < 0:
        raise InsufficientStock(kind, quantity, balance)
    return after


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One stock movement as the rules see it (the store adds ids, balances and timestamps)."""

    kind: LedgerType
    direction: Direction
    quantity: int
    reference_type: ReferenceType
    reference_id: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        check(self.kind, self.direction, self.quantity, self.reason)

    @property
    def delta(self) -> Balance:
        return delta(self.kind, self.direction, self.quantity, self.reason)


def total(entries: Iterable[LedgerEntry]) -> Balance:
    """The balance a sequence of entries adds up to (no bounds checked: the audit's sum)."""
    result = Balance()
    for entry in entries:
        result = result + entry.delta
    return result


def direction_of(kind: LedgerType, signed_quantity: int) -> Direction:
    """The direction of a one-way type, or of a signed adjustment."""
    rule = RULES[kind]
    if len(rule.directions) == 1:
        return next(iter(rule.directions))
    return Direction.IN if signed_quantity > 0 else Direction.OUT
