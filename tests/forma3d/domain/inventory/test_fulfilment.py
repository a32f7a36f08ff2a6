from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.inventory.fulfilment import (
    FulfilmentSplit,
    split_fulfilment,
)


def test_stock_first_then_print() -> None:
    assert split_fulfilment(5, 2) == FulfilmentSplit(from_stock=2, to_print=3)
    assert split_fulfilment(2, 10) == FulfilmentSplit(from_stock=2, to_print=0)
    assert split_fulfilment(2, -3) == FulfilmentSplit(from_stock=0, to_print=2)
    assert split_fulfilment(2, 10, use_stock=False) == FulfilmentSplit(0, 2)


def test_split_rejects_empty_line() -> None:
    with pytest.raises(ValueError, match="quantity 0"):
        split_fulfilment(0, 1)


@given(st.integers(1, 1000), st.integers(-50, 1000))
def test_split_adds_up_and_never_overdraws(quantity: int, available: int) -> None:
    split = split_fulfilment(quantity, available)
    assert split.from_stock + split.to_print == quantity
    assert 0 <= split.from_stock <= max(available, 0)
