"""GridFlock presets: a tenant's named choices for a plate set (printer, magnets with their
hole, connectors, bed margin, brim, filament), picked by the shop's SKU or a line-item property.

Without a preset, the tenant's settings give the same choices; a preset replaces them all.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forma3d.domain.gridflock.errors import InvalidGridRequest
from forma3d.domain.gridflock.planner import ConnectorStyle, PlanOptions
from forma3d.domain.gridflock.profiles import PrinterProfile, get_profile
from forma3d.domain.tenants import (
    FILAMENTS,
    MAGNET_DEPTH_MM,
    MAGNET_DIAMETER_MM,
    MARGIN_MM,
    TenantSettings,
)

PRESET_NAME = r"^[a-z0-9_]{1,40}$"
"""Lower-case letters, digits and underscores: no dash, so `GRID-CUSTOM-<preset>-...` parses."""


class PresetSpec(BaseModel):
    """A preset's choices, validated like the tenant settings they stand in for."""

    model_config = ConfigDict(extra="forbid")
    printer_profile: str = Field(description="profile id (prusa-mk4) or SKU code (MK4)")
    magnets: bool = False
    magnet_diameter_mm: float = Field(default=MAGNET_DIAMETER_MM, ge=3.0, le=12.0)
    magnet_depth_mm: float = Field(default=MAGNET_DEPTH_MM, ge=1.0, le=5.0)
    connector: ConnectorStyle = ConnectorStyle.PUZZLE
    margin_mm: float = Field(default=MARGIN_MM, ge=2.0, le=20.0)
    brim_mm: float = Field(default=0.0, ge=0.0, le=10.0)
    filament: str = "pla"

    @field_validator("printer_profile")
    @classmethod
    def _profile(cls, value: str) -> str:
        try:
            return get_profile(value).id
        except InvalidGridRequest as error:
            raise ValueError(error.reason) from None

    @field_validator("filament")
    @classmethod
    def _filament(cls, value: str) -> str:
        if value.lower() not in FILAMENTS:
            raise ValueError(f"unknown filament {value!r} (known: {', '.join(FILAMENTS)})")
        return value.lower()

    @property
    def profile(self) -> PrinterProfile:
        return get_profile(self.printer_profile)

    def options(self) -> PlanOptions:
        return PlanOptions(
            magnets=self.magnets, connector=self.connector,
            magnet_diameter_mm=self.magnet_diameter_mm, magnet_depth_mm=self.magnet_depth_mm,
            margin_mm=self.margin_mm, brim_mm=self.brim_mm, filament=self.filament)


class Preset(PresetSpec):
    """A named preset of one tenant."""

    name: str = Field(pattern=PRESET_NAME)


def tenant_choices(settings: TenantSettings) -> tuple[PrinterProfile, PlanOptions]:
    """The printer and options a line item gets when it names no preset."""
    return get_profile(settings.gridflock_printer_profile), PlanOptions(
        magnet_diameter_mm=settings.gridflock_magnet_diameter_mm,
        magnet_depth_mm=settings.gridflock_magnet_depth_mm,
        margin_mm=settings.gridflock_margin_mm, brim_mm=settings.gridflock_brim_mm,
        filament=settings.gridflock_filament)


def choices(settings: TenantSettings, preset: PresetSpec | None
            ) -> tuple[PrinterProfile, PlanOptions]:
    """The preset's printer and options, or the tenant's."""
    if preset is None:
        return tenant_choices(settings)
    return preset.profile, preset.options()
