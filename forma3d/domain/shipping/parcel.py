"""Parcel weight as Sendcloud wants it: kilograms as a decimal string with three decimals.

Rounded up, never down, and at least 1 g: under-declaring weight gets a parcel surcharged or
refused by the carrier, and Sendcloud rejects a zero weight.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_UP, Decimal

from forma3d.domain.printing.mapping import ProductMapping

_GRAM = Decimal("0.001")


def parcel_weight_kg(
    part_grams: Iterable[Decimal | int], packaging_grams: Decimal | int = 0
) -> str:
    """Total of every part's grams plus packaging, as kg with 3 decimals ("1.250")."""
    grams = [Decimal(g) for g in part_grams]
    packaging = Decimal(packaging_grams)
    if any(g < 0 for g in grams) or packaging < 0:
        raise ValueError("parcel weight: negative grams")
    total = sum(grams, Decimal(0)) + packaging
    kg = (total / 1000).quantize(_GRAM, rounding=ROUND_UP)
    return format(max(kg, _GRAM), "f")


def line_item_grams(mapping: ProductMapping, quantity: int) -> Decimal:
    """Grams of every part of `quantity` units of a mapped product."""
    if quantity < 0:
        raise ValueError(f"line item weight: negative quantity {quantity}")
    return mapping.grams_per_unit * quantity
