"""What a tenant chooses about how its farm runs (stored in tenants.settings)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from forma3d.domain.inventory.replenishment import parse_clock

GRIDFLOCK_CEILING_MM = 1200.0
"""The platform's largest drawer side, whatever a tenant allows: planning stays far under a
second and a few MB up to it (benchmarks/gridflock.py `preview_largest_*`); the row-stagger search
grows steeply beyond (1500 mm: 26,000 row plans and about 0.4 s; 3000 mm: over a minute)."""
GridflockEngine = Literal["manifold", "openscad"]
"""How plate solids are made: the Manifold kernel in process (milliseconds), or OpenSCAD 2021.01
(the reference, seconds per plate), kept as a fallback."""


class TenantSettings(BaseModel):
    """Operational choices a tenant makes (stored in tenants.settings)."""

    # Five: at a 10 % failure rate a 140-job day loses no order in 99.9 % of days (three: 87 %).
    max_print_attempts: int = Field(default=5, ge=1, le=20)
    cancel_printing_jobs: bool = True  # on order cancellation: stop prints, or let them finish
    packaging_grams: int = Field(default=150, ge=0)
    stranded_job_seconds: float = Field(default=120.0, gt=0)
    # A job PRINTING with no update for this long is checked against the farm's job history.
    stuck_job_seconds: float = Field(default=1800.0, gt=0)
    # GridFlock (custom baseplates). Off by default: it spends cluster CPU minutes on OpenSCAD and
    # creates product mappings and farm files by itself, so a shop opts in; until then a
    # GRID-CUSTOM line item is held with a reason that names this flag.
    gridflock_enabled: bool = False
    gridflock_min_mm: float = Field(default=100.0, gt=0)
    gridflock_max_mm: float = Field(default=1000.0, gt=0, le=GRIDFLOCK_CEILING_MM)
    gridflock_printer_profile: str = "bambu-a1"
    gridflock_required_tags: list[str] = Field(default_factory=list, max_length=32)
    # Manifold by default: tests/forma3d/gridflock/test_gridflock_engines.py measures it equal
    # to the OpenSCAD reference on random plates.
    gridflock_engine: GridflockEngine = "manifold"
    # Stock Management (inventory). Off by default: with it on, orders take available units
    # from stock before anything is printed, and the replenishment scheduler prints products
    # below their minimum in the quiet hours (local time in `stock_time_zone`, may wrap over
    # midnight). Parts already printed for a cancelled order go to stock or to scrap.
    stock_management_enabled: bool = False
    stock_quiet_start: str = "22:00"
    stock_quiet_end: str = "06:00"
    stock_time_zone: str = "UTC"
    stock_cancelled_parts: Literal["STOCK", "SCRAP"] = "STOCK"
    # Live orders. An order prints once Shopify says it is paid; with this on, an authorized
    # (not yet captured) payment is enough.
    print_authorized_orders: bool = False
    # Line items whose SKU matches one of these shell-style patterns (`*`, `?`; case-insensitive)
    # are not prints (e.g. "GIFT-*", "SHIPPING-PROTECTION"): skipped, they never hold an order.
    ignored_sku_patterns: list[str] = Field(default_factory=list, max_length=64)

    @field_validator("stock_quiet_start", "stock_quiet_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("ignored_sku_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        cleaned = [p.strip() for p in value]
        if any(not p or len(p) > 128 for p in cleaned):
            raise ValueError("an ignore pattern is 1 to 128 characters")
        return cleaned

    @field_validator("stock_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
