from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.inventory.ledger import (
    InsufficientStock,
    LedgerEntry,
    apply_entry,
    stock_level,
    stock_levels,
)
from forma3d.domain.inventory.states import Direction, LedgerType, ReferenceType

IN, OUT = Direction.IN, Direction.OUT


def entry(kind: LedgerType, direction: Direction, qty: int, product: str = "p1") -> LedgerEntry:
    return LedgerEntry(product, kind, direction, qty, ReferenceType.STOCK_BATCH, "b1", "why")


def test_level_is_signed_sum() -> None:
    entries = [
        entry(LedgerType.PRODUCED, IN, 10),
        entry(LedgerType.CONSUMED, OUT, 3),
        entry(LedgerType.SCRAPPED, OUT, 1),
        entry(LedgerType.ADJUSTED, IN, 2),
    ]
    assert stock_level(entries) == 8
    assert stock_level([]) == 0


def test_levels_per_product() -> None:
    entries = [
        entry(LedgerType.PRODUCED, IN, 5, "a"),
        entry(LedgerType.PRODUCED, IN, 2, "b"),
        entry(LedgerType.CONSUMED, OUT, 4, "a"),
    ]
    assert stock_levels(entries) == {"a": 1, "b": 2}


def test_entries_validate_quantity_direction_and_manual_reason() -> None:
    with pytest.raises(ValueError, match="quantity 0"):
        entry(LedgerType.PRODUCED, IN, 0)
    with pytest.raises(ValueError, match="PRODUCED entries cannot be OUT"):
        entry(LedgerType.PRODUCED, OUT, 1)
    with pytest.raises(ValueError, match="needs a reason"):
        LedgerEntry("p1", LedgerType.ADJUSTED, IN, 1, ReferenceType.MANUAL)
    assert LedgerEntry("p1", LedgerType.ADJUSTED, IN, 1, reason="recount").delta == 1


def test_cannot_take_more_than_on_hand() -> None:
    assert apply_entry(3, entry(LedgerType.CONSUMED, OUT, 3)) == 0
    with pytest.raises(InsufficientStock, match="p1 has 2 in stock, cannot take 3"):
        apply_entry(2, entry(LedgerType.CONSUMED, OUT, 3))


movements = st.lists(
    st.tuples(
        st.sampled_from(
            [
                (LedgerType.PRODUCED, IN),
                (LedgerType.CONSUMED, OUT),
                (LedgerType.SCRAPPED, OUT),
                (LedgerType.ADJUSTED, IN),
                (LedgerType.ADJUSTED, OUT),
            ]
        ),
        st.integers(min_value=1, max_value=20),
    ),
    max_size=30,
)


@given(movements)
def test_applying_accepted_entries_matches_the_sum_and_never_goes_negative(
    moves: list[tuple[tuple[LedgerType, Direction], int]],
) -> None:
    level, accepted = 0, []
    for (kind, direction), qty in moves:
        e = entry(kind, direction, qty)
        try:
            level = apply_entry(level, e)
        except InsufficientStock:
            assert direction == OUT and qty > level
            continue
        accepted.append(e)
        assert level >= 0
    assert level == stock_level(accepted)
