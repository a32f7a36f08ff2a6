from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.inventory.fulfilment import (
    FulfilmentSplit,
    replenishment_units,
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


def test_replenishment_fills_towards_max_in_batches() -> None:
    assert replenishment_units(2, minimum=5, maximum=20, batch_size=4) == 4
    assert replenishment_units(2, minimum=5, maximum=6, batch_size=10) == 4
    assert replenishment_units(2, minimum=5, batch_size=10) == 3


def test_replenishment_counts_units_already_printing() -> None:
    assert replenishment_units(2, minimum=5, in_progress=3, batch_size=10) == 0
    assert replenishment_units(5, minimum=5, batch_size=10) == 0


def test_replenishment_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="maximum 3 < minimum 5"):
        replenishment_units(0, minimum=5, maximum=3, batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        replenishment_units(0, minimum=5, batch_size=0)


@given(
    st.integers(0, 100),
    st.integers(0, 100),
    st.integers(0, 100),
    st.integers(1, 50),
    st.integers(0, 50),
)
def test_replenishment_never_overshoots_target_or_batch(
    current: int, minimum: int, extra: int, batch: int, in_progress: int
) -> None:
    maximum = minimum + extra
    units = replenishment_units(
        current, minimum=minimum, maximum=maximum, in_progress=in_progress, batch_size=batch
    )
    assert 0 <= units <= batch
    if units:
        assert current + in_progress + units <= maximum
    else:
        assert current + in_progress >= minimum
