"""The ledger rules: one table for directions, effects and reasons; balances that never let
available stock or reservations go below zero."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.inventory.ledger import (
    RULES,
    Balance,
    InsufficientStock,
    LedgerEntry,
    LedgerError,
    apply,
    direction_of,
    total,
)
from forma3d.domain.inventory.states import Direction, LedgerType, ReferenceType

IN, OUT = Direction.IN, Direction.OUT
T = LedgerType


@pytest.mark.parametrize(("kind", "allowed"), [
    (T.PRODUCED, {IN}), (T.RETURNED, {IN}), (T.RELEASED, {IN}), (T.CONSUMED, {OUT}),
    (T.RESERVED, {OUT}), (T.SCRAPPED, {OUT}), (T.ADJUSTED, {IN, OUT})])
def test_each_type_moves_only_its_way(kind: LedgerType, allowed: set[Direction]) -> None:
    assert set(RULES[kind].directions) == allowed
    for direction in Direction:
        if direction in allowed:
            LedgerEntry(kind, direction, 1, ReferenceType.USER, reason="counted")
        else:
            with pytest.raises(LedgerError, match=f"{kind.value} entries cannot be"):
                LedgerEntry(kind, direction, 1, ReferenceType.USER, reason="counted")


@pytest.mark.parametrize("kind", [T.ADJUSTED, T.SCRAPPED])
def test_adjustment_and_scrap_need_a_reason(kind: LedgerType) -> None:
    for reason in (None, "", "   "):
        with pytest.raises(LedgerError, match="needs a reason"):
            LedgerEntry(kind, OUT, 1, ReferenceType.USER, reason=reason)


def test_quantity_is_positive() -> None:
    with pytest.raises(LedgerError, match="quantity 0 < 1"):
        LedgerEntry(T.PRODUCED, IN, 0, ReferenceType.STOCK_BATCH)


def test_reservation_lifecycle() -> None:
    b = apply(Balance(), T.PRODUCED, IN, 5)
    assert (b.on_hand, b.reserved, b.available) == (5, 0, 5)
    b = apply(b, T.RESERVED, OUT, 3)
    assert (b.on_hand, b.reserved, b.available) == (5, 3, 2)
    b = apply(b, T.RELEASED, IN, 1)
    assert (b.on_hand, b.reserved, b.available) == (5, 2, 3)
    b = apply(b, T.CONSUMED, OUT, 2)
    assert (b.on_hand, b.reserved, b.available) == (3, 0, 3)
    b = apply(b, T.ADJUSTED, OUT, 1, "miscount")
    b = apply(b, T.SCRAPPED, OUT, 1, "warped")
    b = apply(b, T.RETURNED, IN, 4)
    assert (b.on_hand, b.reserved, b.available) == (5, 0, 5)


def test_reserved_units_cannot_be_taken_by_anything_else() -> None:
    b = apply(apply(Balance(), T.PRODUCED, IN, 2), T.RESERVED, OUT, 2)
    for kind, direction in ((T.RESERVED, OUT), (T.SCRAPPED, OUT), (T.ADJUSTED, OUT)):
        with pytest.raises(InsufficientStock, match="0 available"):
            apply(b, kind, direction, 1, "why")
    with pytest.raises(InsufficientStock):
        apply(Balance(), T.RELEASED, IN, 1)
    with pytest.raises(InsufficientStock):
        apply(Balance(3, 0), T.CONSUMED, OUT, 1)  # only reserved units are consumed


def test_direction_of_signed_adjustments() -> None:
    assert direction_of(T.ADJUSTED, 3) == IN
    assert direction_of(T.ADJUSTED, -3) == OUT
    assert direction_of(T.SCRAPPED, 3) == OUT


MOVES = st.tuples(st.sampled_from([(T.PRODUCED, IN), (T.RETURNED, IN), (T.RESERVED, OUT),
                                   (T.RELEASED, IN), (T.CONSUMED, OUT), (T.ADJUSTED, IN),
                                   (T.ADJUSTED, OUT), (T.SCRAPPED, OUT)]),
                  st.integers(1, 20))


@given(st.lists(MOVES, max_size=60))
def test_accepted_entries_sum_to_the_balance_and_stay_in_bounds(
        moves: list[tuple[tuple[LedgerType, Direction], int]]) -> None:
    balance, accepted = Balance(), []
    for (kind, direction), quantity in moves:
        try:
            balance = apply(balance, kind, direction, quantity, "test")
        except InsufficientStock:
            continue
        accepted.append(LedgerEntry(kind, direction, quantity, ReferenceType.USER, reason="t"))
        assert 0 <= balance.reserved <= balance.on_hand
    assert total(accepted) == balance
