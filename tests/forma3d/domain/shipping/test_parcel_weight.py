from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping
from forma3d.domain.shipping.parcel import line_item_grams, parcel_weight_kg


def test_weight_is_kg_with_three_decimals() -> None:
    assert parcel_weight_kg([400, 350], packaging_grams=250) == "1.000"
    assert parcel_weight_kg([Decimal("12.5")], 100) == "0.113"


def test_weight_rounds_up_and_is_never_zero() -> None:
    assert parcel_weight_kg([Decimal("0.1")]) == "0.001"
    assert parcel_weight_kg([]) == "0.001"
    assert parcel_weight_kg([Decimal("1000.0001")]) == "1.001"


def test_large_weights_are_plain_decimals() -> None:
    assert parcel_weight_kg([25_000]) == "25.000"


def test_negative_grams_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        parcel_weight_kg([-1])
    with pytest.raises(ValueError, match="negative"):
        parcel_weight_kg([1], packaging_grams=-5)


def test_line_item_grams_use_the_mapping() -> None:
    mapping = ProductMapping(
        "LAMP", (AssemblyPart("a", "f", 2, Decimal("10")), AssemblyPart("b", "g", 1, Decimal("5")))
    )
    assert line_item_grams(mapping, 3) == Decimal("75")
    assert parcel_weight_kg([line_item_grams(mapping, 3)], 200) == "0.275"


@given(st.lists(st.decimals(min_value=0, max_value=10_000, places=3), max_size=10))
def test_declared_weight_never_under_the_real_weight(grams: list[Decimal]) -> None:
    declared = Decimal(parcel_weight_kg(grams))
    real_kg = sum(grams, Decimal(0)) / 1000
    assert declared >= real_kg
    assert declared - real_kg < Decimal("0.001") or declared == Decimal("0.001")
    assert declared.as_tuple().exponent == -3
