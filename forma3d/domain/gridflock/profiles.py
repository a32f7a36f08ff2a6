"""Printer profiles: the bed size the planner splits for, and the short code used in SKUs."""

from __future__ import annotations

from dataclasses import dataclass

from forma3d.domain.gridflock.errors import InvalidGridRequest


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """A printer model as GridFlock sees it.

    `code` is the SKU suffix (upper-case, no dashes) so repeat orders for the same printer map
    to the same product; `slicer_profile` names the files under `slicer/profiles/`.
    """

    id: str
    code: str
    name: str
    bed_x_mm: float
    bed_y_mm: float
    slicer_profile: str


@dataclass(frozen=True, slots=True)
class SliceSettings:
    """What a slicer run takes besides the printer: the brim around each plate and the
    filament profile (`slicer/profiles/prusaslicer/filament_<filament>.ini`)."""

    brim_mm: float = 0.0
    filament: str = "pla"


DEFAULT_SLICING = SliceSettings()

PROFILES: dict[str, PrinterProfile] = {
    p.id: p
    for p in (
        PrinterProfile("bambu-a1", "A1", "Bambu Lab A1", 256.0, 256.0, "bambu_a1"),
        PrinterProfile(
            "bambu-a1-mini", "A1MINI", "Bambu Lab A1 mini", 180.0, 180.0, "bambu_a1_mini"
        ),
        PrinterProfile("bambu-p1s", "P1S", "Bambu Lab P1S / X1C", 256.0, 256.0, "bambu_p1s"),
        PrinterProfile(
            "prusa-core-one", "COREONE", "Prusa Core One", 250.0, 220.0, "prusa_core_one"
        ),
        PrinterProfile("prusa-mk4", "MK4", "Prusa MK4", 250.0, 210.0, "prusa_mk4"),
        PrinterProfile("prusa-mini", "MINI", "Prusa MINI", 180.0, 180.0, "prusa_mini"),
        PrinterProfile("bed-350", "B350", "350 mm bed (Voron 2.4 350 class)", 350.0, 350.0,
                       "bed_350"),
    )
}

DEFAULT_PROFILE_ID = "bambu-a1"


def get_profile(key: str) -> PrinterProfile:
    """Look a profile up by id (`prusa-mk4`) or SKU code (`MK4`), case-insensitively."""
    wanted = key.strip().lower()
    for profile in PROFILES.values():
        if wanted in (profile.id, profile.code.lower()):
            return profile
    known = ", ".join(sorted(PROFILES))
    raise InvalidGridRequest("printer_profile", f"unknown printer profile {key!r} (known: {known})")
