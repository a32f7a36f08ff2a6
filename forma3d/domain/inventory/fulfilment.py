"""Hybrid fulfilment (take from stock before printing) and replenishment sizing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FulfilmentSplit:
    """How the units of one line item are fulfilled."""

    from_stock: int
    to_print: int


def split_fulfilment(quantity: int, available: int, *, use_stock: bool = True) -> FulfilmentSplit:
    """Take as many units as stock allows, print the rest.

    `available` may be negative or stale when read; it is clamped, and the CONSUMED ledger entry
    written with the split is what finally guards the shelf (see ledger.apply_entry).
    """
    if quantity < 1:
        raise ValueError(f"fulfilment: quantity {quantity} < 1")
    take = min(quantity, max(available, 0)) if use_stock else 0
    return FulfilmentSplit(from_stock=take, to_print=quantity - take)


def replenishment_units(
    current: int,
    *,
    minimum: int,
    maximum: int | None = None,
    in_progress: int = 0,
    batch_size: int,
) -> int:
    """Units to schedule for a product in this replenishment cycle (0 when none are needed).

    Below the minimum (counting units already being printed), fill towards the maximum (or the
    minimum when there is no maximum), at most `batch_size` units per cycle so one product does
    not take the whole farm.
    """
    if minimum < 0 or batch_size < 1 or in_progress < 0:
        raise ValueError("replenishment: minimum >= 0, batch_size >= 1, in_progress >= 0")
    if maximum is not None and maximum < minimum:
        raise ValueError(f"replenishment: maximum {maximum} < minimum {minimum}")
    projected = current + in_progress
    if projected >= minimum:
        return 0
    target = minimum if maximum is None else maximum
    return min(target - projected, batch_size)
