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
    """Operational choices a tenant makes (stored in tenants.settings). Each setting's docstring
    is its description in the API (GET/PATCH /api/v1/tenant/settings)."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    # Five: at a 10 % failure rate a 140-job day loses no order in 99.9 % of days (three: 87 %).
    max_print_attempts: int = Field(default=5, ge=1, le=20)
    """How often a failed print job is tried before its order is held for an operator."""
    cancel_printing_jobs: bool = True  # on order cancellation: stop prints, or let them finish
    """On order cancellation: stop prints under way (true), or let them finish."""
    packaging_grams: int = Field(default=150, ge=0)
    """Grams added to the printed parts' weight for the parcel."""
    stranded_job_seconds: float = Field(default=120.0, gt=0)
    """Seconds a job queued at the farm may be missing from both its queue and its history
    before reconciliation reports it stranded."""
    # A job PRINTING with no update for this long is checked against the farm's job history.
    stuck_job_seconds: float = Field(default=1800.0, gt=0)
    """A job PRINTING with no update for this long is checked against the farm's job history."""
    # GridFlock (custom baseplates). Off by default: it spends cluster CPU minutes on OpenSCAD and
    # creates product mappings and farm files by itself, so a shop opts in; until then a
    # GRID-CUSTOM line item is held with a reason that names this flag.
    gridflock_enabled: bool = False
    """Make custom Gridfinity baseplates (GRID-CUSTOM SKUs); off: such line items are held."""
    gridflock_min_mm: float = Field(default=100.0, gt=0)
    """Smallest drawer side (mm) a GridFlock order may ask for."""
    gridflock_max_mm: float = Field(default=1000.0, gt=0, le=GRIDFLOCK_CEILING_MM)
    """Largest drawer side (mm) a GridFlock order may ask for (at most the platform's
    ceiling, 1200)."""
    gridflock_printer_profile: str = "bambu-a1"
    """The printer profile GridFlock plates are sized and sliced for."""
    gridflock_required_tags: list[str] = Field(default_factory=list, max_length=32)
    """Printer tags a GridFlock plate's print jobs require."""
    # Manifold by default: tests/forma3d/gridflock/test_gridflock_engines.py measures it equal
    # to the OpenSCAD reference on random plates.
    gridflock_engine: GridflockEngine = "manifold"
    """How plate solids are made: manifold (in process) or openscad (the reference)."""
    # What a plate is made with when no preset says otherwise (a preset names each of them).
    gridflock_magnet_diameter_mm: float = Field(default=MAGNET_DIAMETER_MM, ge=3.0, le=12.0)
    """Magnet hole diameter (mm) when no preset names one."""
    gridflock_magnet_depth_mm: float = Field(default=MAGNET_DEPTH_MM, ge=1.0, le=5.0)
    """Magnet hole depth (mm); a deeper hole makes a thicker floor."""
    gridflock_brim_mm: float = Field(default=0.0, ge=0.0, le=10.0)
    """Brim width (mm) the slicer adds around each plate; 0 for none."""
    gridflock_margin_mm: float = Field(default=MARGIN_MM, ge=2.0, le=20.0)
    """Margin (mm) kept free at the bed's edges when plates are sized."""
    gridflock_filament: str = "pla"
    """Filament the plates are sliced for (pla or petg)."""
    # Quotes: the price model (none: quotes answer 409), and the storefront origins allowed to
    # call the quote endpoint from a browser besides the Shopify integration's shop domain.
    gridflock_pricing: GridPricing | None = None
    """The quote price model (base, per cell, per plate, per magnet, minimum, currency); none:
    quotes answer 409."""
    gridflock_storefront_origins: list[str] = Field(default_factory=list, max_length=16)
    """Browser origins allowed to call the quote endpoint, besides the Shopify shop domain."""
    # Stock Management (inventory). Off by default: with it on, orders take available units
    # from stock before anything is printed, and the replenishment scheduler prints products
    # below their minimum in the quiet hours (local time in `stock_time_zone`, may wrap over
    # midnight). Parts already printed for a cancelled order go to stock or to scrap.
    stock_management_enabled: bool = False
    """Take ordered units from stock first, and print products below their minimum in the
    quiet hours."""
    stock_quiet_start: str = "22:00"
    """Start of the quiet hours (HH:MM, local time in stock_time_zone) for replenishment."""
    stock_quiet_end: str = "06:00"
    """End of the quiet hours (HH:MM); may wrap over midnight."""
    stock_time_zone: str = "UTC"
    """IANA time zone of the quiet hours, e.g. Europe/Amsterdam."""
    stock_cancelled_parts: Literal["STOCK", "SCRAP"] = "STOCK"
    """Where parts already printed for a cancelled order go: STOCK or SCRAP."""
    # Outgoing webhooks go to public https addresses only, unless the tenant explicitly allows
    # private ones (its own network: private ranges and loopback) knowing what it exposes.
    webhooks_allow_private: bool = False
    """Allow outgoing webhooks to private addresses (this tenant's own network)."""
    # Rate limits of each API key and each signed-in user (a burst and a sustained bucket, as
    # Printago has two), and the ceiling on inbound provider webhooks, which retry after a 429.
    api_requests_per_second: int = Field(default=50, ge=1, le=100_000)
    """Burst limit of each API key and each signed-in user (requests per second)."""
    api_requests_per_minute: int = Field(default=3000, ge=1, le=6_000_000)
    """Sustained limit of each API key and each signed-in user (requests per minute)."""
    webhook_requests_per_second: int = Field(default=2000, ge=1, le=100_000)
    """Ceiling on inbound provider webhooks for this tenant (they retry after a 429)."""
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
    print_authorized_orders: bool = False
    """Print an order once its payment is authorized (not yet captured); otherwise only once
    Shopify says it is paid."""
    ignored_sku_patterns: list[str] = Field(default_factory=list, max_length=64)
    """Shell-style SKU patterns (`*`, `?`; case-insensitive) of line items that are not prints,
    e.g. GIFT-*: skipped, they never hold an order."""

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
