"""What a tenant chooses about how its farm runs (stored in tenants.settings)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forma3d.domain.inventory.replenishment import parse_clock
from forma3d.domain.shipping.delivery import Dimensions, ShippingMethodRule

GRIDFLOCK_CEILING_MM = 1200.0
"""The platform's largest drawer side, whatever a tenant allows: planning stays far under a
second and a few MB up to it (benchmarks/gridflock.py `preview_largest_*`); the row-stagger search
grows steeply beyond (1500 mm: 26,000 row plans and about 0.4 s; 3000 mm: over a minute)."""
GridflockEngine = Literal["manifold", "openscad"]
"""How plate solids are made: the Manifold kernel in process (milliseconds), or OpenSCAD 2021.01
(the reference, seconds per plate), kept as a fallback."""
MAGNET_DIAMETER_MM = 6.5
"""The default magnet hole (6 x 2 mm disc magnets with clearance), as in gridflock_plate.scad."""
MAGNET_DEPTH_MM = 2.4
MARGIN_MM = 3.5
"""Kept off the bed on each axis (room for the 1.8 mm male tabs), plus the brim on each side."""
FILAMENTS = ("pla", "petg")
"""Filaments a preset may name: `slicer/profiles/prusaslicer/filament_<name>.ini` each."""
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


class GridPricing(BaseModel):
    """A tenant's GridFlock price: base + per cell + per plate + per magnet, at least `minimum`.

    Amounts are decimals in `currency` (written as strings in the settings JSON, so no binary
    float ever touches a price); cells count the drawer's grid area (a half cell is half)."""

    model_config = ConfigDict(extra="forbid")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    base: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=4)
    per_cell: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=4)
    per_plate: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=4)
    per_magnet: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=4)
    minimum: Decimal = Field(default=Decimal(0), ge=0, max_digits=12, decimal_places=4)


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
    # What a plate is made with when no preset says otherwise (a preset names each of them).
    gridflock_magnet_diameter_mm: float = Field(default=MAGNET_DIAMETER_MM, ge=3.0, le=12.0)
    gridflock_magnet_depth_mm: float = Field(default=MAGNET_DEPTH_MM, ge=1.0, le=5.0)
    gridflock_brim_mm: float = Field(default=0.0, ge=0.0, le=10.0)
    gridflock_margin_mm: float = Field(default=MARGIN_MM, ge=2.0, le=20.0)
    gridflock_filament: str = "pla"
    # Quotes: the price model (none: quotes answer 409), and the storefront origins allowed to
    # call the quote endpoint from a browser besides the Shopify integration's shop domain.
    gridflock_pricing: GridPricing | None = None
    gridflock_storefront_origins: list[str] = Field(default_factory=list, max_length=16)
    # Stock Management (inventory). Off by default: with it on, orders take available units
    # from stock before anything is printed, and the replenishment scheduler prints products
    # below their minimum in the quiet hours (local time in `stock_time_zone`, may wrap over
    # midnight). Parts already printed for a cancelled order go to stock or to scrap.
    stock_management_enabled: bool = False
    stock_quiet_start: str = "22:00"
    stock_quiet_end: str = "06:00"
    stock_time_zone: str = "UTC"
    stock_cancelled_parts: Literal["STOCK", "SCRAP"] = "STOCK"
    # Outgoing webhooks go to public https addresses only, unless the tenant explicitly allows
    # private ones (its own network: private ranges and loopback) knowing what it exposes.
    webhooks_allow_private: bool = False
    # Rate limits of each API key and each signed-in user (a burst and a sustained bucket, as
    # Printago has two), and the ceiling on inbound provider webhooks, which retry after a 429.
    api_requests_per_second: int = Field(default=50, ge=1, le=100_000)
    api_requests_per_minute: int = Field(default=3000, ge=1, le=6_000_000)
    webhook_requests_per_second: int = Field(default=2000, ge=1, le=100_000)
    # Shipping. Checkout rates (Shopify shipping line code or title) -> Sendcloud method; a rate
    # no rule names ships with the Sendcloud integration's default method.
    shipping_methods: list[ShippingMethodRule] = Field(
        default_factory=list, max_length=100,
        description="checkout rates (Shopify shipping line code or title) mapped onto Sendcloud "
        "methods; a rate no rule names ships with the Sendcloud integration's default")
    # The parcel's box (length, width, height in cm) when none of the order's product mappings
    # names its packaging; None: Sendcloud's defaults for the method.
    parcel_dimensions_cm: Dimensions | None = Field(
        default=None, description="the parcel's box (length, width, height in cm) when no product "
        "mapping of the order names its packaging_cm")
    # Transient failures in a row (Sendcloud down, timing out) before a shipment is FAILED for
    # an operator's retry; each is redelivered by the outbox with exponential backoff.
    shipment_create_attempts: int = Field(
        default=5, ge=1, le=50, description="transient failures in a row creating a parcel "
        "before the shipment is FAILED for an operator's retry")

    @field_validator("shipping_methods")
    @classmethod
    def _distinct_rates(cls, value: list[ShippingMethodRule]) -> list[ShippingMethodRule]:
        seen: set[str] = set()
        for rule in value:
            key = rule.checkout.strip().casefold()
            if key in seen:
                raise ValueError(f"checkout rate {rule.checkout!r} is mapped twice")
            seen.add(key)
        return value

    @field_validator("gridflock_filament")
    @classmethod
    def _filament(cls, value: str) -> str:
        if value.lower() not in FILAMENTS:
            raise ValueError(f"unknown filament {value!r} (known: {', '.join(FILAMENTS)})")
        return value.lower()

    @field_validator("gridflock_storefront_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        out = [v.strip().lower().rstrip("/") for v in values]
        for origin in out:
            if not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com")
        return out

    @model_validator(mode="after")
    def _gridflock_range(self) -> Self:
        if self.gridflock_min_mm > self.gridflock_max_mm:
            raise ValueError(f"gridflock_min_mm {self.gridflock_min_mm:g} is above "
                             f"gridflock_max_mm {self.gridflock_max_mm:g}")
        return self

    @field_validator("stock_quiet_start", "stock_quiet_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("stock_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
