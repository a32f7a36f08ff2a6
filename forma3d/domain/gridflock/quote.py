"""GridFlock quotes: a plate set's print time, filament and price, without making anything.

Figures come from the slicer when the size's plates were sliced before (the caller looks them
up), otherwise from `estimate_plate`, a linear model fitted on sliced plates by
`scripts/fit_gridflock_estimate.py` (its coefficients are pasted below), and are then labelled
"estimate". Prices follow the tenant's `GridPricing` in Decimal arithmetic:

    price = max(minimum, base + per_cell * cells + per_plate * plates + per_magnet * magnets)

rounded half-up to cents; cells count the drawer's grid area (a half cell is half a cell),
plates every printed copy, magnets four per whole cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from forma3d.domain.gridflock.planner import Plate, PlateSet
from forma3d.domain.tenants import GridPricing

CENT = Decimal("0.01")
MAGNETS_PER_CELL = 4
Source = Literal["sliced", "estimate"]

# --- the estimate model (scripts/fit_gridflock_estimate.py writes these) --------------------
# print seconds = s0 + s_area * area_mm2 + s_volume * area_mm2 * floor_mm
# grams         = g0 + g_area * area_mm2 + g_volume * area_mm2 * floor_mm
ESTIMATE_FITTED_ON = "14 plates, prusa-mk4, PrusaSlicer, PLA; largest error 4% time, 4% grams"
ESTIMATE_SECONDS = (497.2672592275638, 0.2987033546267003, 0.08525669186293205)
ESTIMATE_GRAMS = (2.4687379711271222, 0.0017143267711217057, 0.0003648135277351007)


@dataclass(frozen=True, slots=True)
class PlateFigures:
    print_seconds: int
    filament_g: float


@dataclass(frozen=True, slots=True)
class Price:
    currency: str
    cells: Decimal
    plates: int
    magnets: int
    subtotal: Decimal
    amount: Decimal
    minimum_applied: bool


def features(plate: Plate) -> tuple[float, float, float]:
    """The model's inputs for one plate: 1, its footprint (mm2) and footprint x floor (mm³)."""
    area = plate.width_mm * plate.depth_mm
    floor = plate.height_mm - 4.65
    return (1.0, area, area * floor)


def estimate_plate(plate: Plate) -> PlateFigures:
    x = features(plate)
    seconds = sum(c * v for c, v in zip(ESTIMATE_SECONDS, x, strict=True))
    grams = sum(c * v for c, v in zip(ESTIMATE_GRAMS, x, strict=True))
    return PlateFigures(max(0, round(seconds)), max(0.0, round(grams, 2)))


def magnet_count(plan: PlateSet) -> int:
    if not plan.options.magnets:
        return 0
    return sum(MAGNETS_PER_CELL * math.floor(p.cells_x) * math.floor(p.cells_y) * p.count
               for p in plan.plates)


def price(pricing: GridPricing, plan: PlateSet) -> Price:
    """The tenant's price for the plate set, exactly (no binary floats)."""
    cells = Decimal(str(plan.cells_x)) * Decimal(str(plan.cells_y))
    magnets = magnet_count(plan)
    subtotal = (pricing.base + pricing.per_cell * cells + pricing.per_plate * plan.total_plates
                + pricing.per_magnet * magnets)
    amount = max(subtotal, pricing.minimum).quantize(CENT, rounding=ROUND_HALF_UP)
    return Price(pricing.currency, cells, plan.total_plates, magnets, subtotal, amount,
                 minimum_applied=pricing.minimum > subtotal)


def totals(plan: PlateSet, figures: dict[int, PlateFigures]) -> PlateFigures:
    """The set's print time and filament from each unique plate's figures times its copies."""
    seconds = sum(figures[p.number].print_seconds * p.count for p in plan.plates)
    grams = sum(figures[p.number].filament_g * p.count for p in plan.plates)
    return PlateFigures(seconds, round(grams, 2))
