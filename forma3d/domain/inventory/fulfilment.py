"""Hybrid fulfilment: take available units from stock before printing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FulfilmentSplit:
    """How the units of one line item are fulfilled."""

    from_stock: int
    to_print: int


def split_fulfilment(quantity: int, available: int, *, use_stock: bool = True) -> FulfilmentSplit:
    """Take as many units as stock allows, print the rest. `available` is read under the stock
    row's lock by the caller, so the RESERVED entry written with the split cannot oversell."""
    if quantity < 1:
        raise ValueError(f"fulfilment: quantity {quantity} < 1")
    take = min(quantity, max(available, 0)) if use_stock else 0
    return FulfilmentSplit(from_stock=take, to_print=quantity - take)
