"""GridFlock intake: line-item properties -> a validated request, and its canonical SKU.

The canonical SKU (`GRID-523x387-MAG-PUZZLE-A1`) names everything that changes the printed plates,
so a repeat order for the same drawer finds the existing product mapping by SKU alone. Choices
other than the defaults add themselves: a magnet hole (`MAG8x3`), a brim (`-B3`), a bed margin
(`-M5`) and a filament (`-FPETG`), e.g. `GRID-400x300-MAG8x3-PUZZLE-MK4-B3`.

The shop's own SKU is `GRID-CUSTOM` or `GRID-CUSTOM-<preset>[-anything]`: the second names one
of the tenant's presets (a line-item property `Preset` names one too, and wins).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from forma3d.domain.gridflock.errors import InvalidGridRequest
from forma3d.domain.gridflock.planner import ConnectorStyle, PlanOptions, PlateSet, plan_plates
from forma3d.domain.gridflock.profiles import PrinterProfile, get_profile
from forma3d.domain.tenants import MARGIN_MM

CUSTOM_SKU_PREFIX = "GRID-CUSTOM"
SIZE_STEP_MM = 0.5
"""Sizes are rounded to half millimetres: finer is below print tolerance and splits mappings."""

_NUM = r"\d+(?:\.\d+)?"
_SKU = re.compile(
    r"^GRID-(?P<w>\d+(?:\.5)?)x(?P<d>\d+(?:\.5)?)"
    rf"-(?P<mag>NOMAG|MAG(?:(?P<magd>{_NUM})x(?P<magz>{_NUM}))?)"
    r"-(?P<conn>PUZZLE|NONE)-(?P<profile>[A-Z0-9]+)"
    rf"(?:-B(?P<brim>{_NUM}))?(?:-M(?P<margin>{_NUM}))?(?:-F(?P<filament>[A-Z0-9]+))?$",
    re.IGNORECASE,
)
_PRESET_SKU = re.compile(r"^GRID-CUSTOM-(?P<preset>[A-Z0-9_]+)", re.IGNORECASE)
_PRESET_KEYS = ("preset", "gridflockpreset")
_WIDTH_KEYS = ("width", "widthmm", "drawerwidth", "drawerwidthmm", "breite", "x")
_DEPTH_KEYS = (
    "depth",
    "depthmm",
    "drawerdepth",
    "drawerdepthmm",
    "length",
    "lengthmm",
    "tiefe",
    "y",
)
_MAGNET_KEYS = ("magnets", "magnet", "magnetholes", "withmagnets")
_CONNECTOR_KEYS = ("connector", "connectors", "connectorstyle", "connection")
_TRUE = {"yes", "y", "true", "1", "on", "with", "with magnets", "ja"}
_FALSE = {"no", "n", "false", "0", "off", "without", "none", "nein", ""}


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """A tenant's accepted drawer sizes; outside them the line item is held with the reason."""

    min_mm: float = 100.0
    max_mm: float = 1000.0


@dataclass(frozen=True, slots=True)
class GridRequest:
    """A validated GridFlock order line: drawer size, options and the printer it is planned for."""

    width_mm: float
    depth_mm: float
    options: PlanOptions
    profile: PrinterProfile

    @property
    def sku(self) -> str:
        return canonical_sku(self.width_mm, self.depth_mm, self.options, self.profile)

    def plan(self) -> PlateSet:
        return plan_plates(self.width_mm, self.depth_mm, self.profile, self.options)


def is_custom_sku(sku: str | None) -> bool:
    return bool(sku) and str(sku).strip().upper().startswith(CUSTOM_SKU_PREFIX)


def _fmt(mm: float) -> str:
    return f"{mm:.1f}".removesuffix(".0")


def _quantise(mm: float) -> float:
    return math.floor(mm / SIZE_STEP_MM + 0.5) * SIZE_STEP_MM


def canonical_sku(
    width_mm: float, depth_mm: float, options: PlanOptions, profile: PrinterProfile
) -> str:
    """`GRID-<w>x<d>-<MAG|NOMAG>-<PUZZLE|NONE>-<profile code>`, sizes in (half) millimetres,
    then whatever else is not the default (magnet hole, brim, margin, filament)."""
    mag = "NOMAG"
    if options.magnets:
        mag = "MAG" + (f"{options.magnet_diameter_mm:g}x{options.magnet_depth_mm:g}"
                       if options.custom_magnet else "")
    extras = ""
    if options.brim_mm:
        extras += f"-B{options.brim_mm:g}"
    if options.margin_mm != MARGIN_MM:
        extras += f"-M{options.margin_mm:g}"
    if options.filament != "pla":
        extras += f"-F{options.filament.upper()}"
    return (
        f"GRID-{_fmt(_quantise(width_mm))}x{_fmt(_quantise(depth_mm))}-{mag}"
        f"-{options.connector.value.upper()}-{profile.code}{extras}"
    )


def parse_sku(sku: str) -> GridRequest:
    """Inverse of `canonical_sku`; limits are not applied (the SKU was valid when it was made)."""
    m = _SKU.match(sku.strip())
    if m is None:
        raise InvalidGridRequest(
            "sku", f"{sku!r} is not a GridFlock SKU like GRID-523x387-MAG-PUZZLE-A1"
        )
    default = PlanOptions()
    options = PlanOptions(
        magnets=m["mag"].upper().startswith("MAG"), connector=ConnectorStyle(m["conn"].lower()),
        magnet_diameter_mm=float(m["magd"]) if m["magd"] else default.magnet_diameter_mm,
        magnet_depth_mm=float(m["magz"]) if m["magz"] else default.magnet_depth_mm,
        brim_mm=float(m["brim"]) if m["brim"] else 0.0,
        margin_mm=float(m["margin"]) if m["margin"] else MARGIN_MM,
        filament=(m["filament"] or "pla").lower(),
    )
    return GridRequest(float(m["w"]), float(m["d"]), options, get_profile(m["profile"]))


def preset_name(sku: str | None,
                properties: Mapping[str, object] | Iterable[Mapping[str, object]] | None
                ) -> str | None:
    """The preset a line item names: its `Preset` property, else `GRID-CUSTOM-<preset>`."""
    named = _find(_pairs(properties or {}), _PRESET_KEYS)
    if named:
        return named.strip().lower()
    m = _PRESET_SKU.match((sku or "").strip())
    return m["preset"].lower() if m else None


def _norm_key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower().replace("(mm)", "mm"))


def _pairs(properties: Mapping[str, object] | Iterable[Mapping[str, object]]) -> dict[str, str]:
    """Accept Shopify's `[{name, value}]` list or a plain mapping; skip private `_` keys."""
    items: Iterable[tuple[object, object]]
    if isinstance(properties, Mapping):
        items = properties.items()
    else:
        items = ((p.get("name"), p.get("value")) for p in properties)
    out: dict[str, str] = {}
    for name, value in items:
        if name is None or str(name).startswith("_"):
            continue
        out[_norm_key(str(name))] = "" if value is None else str(value).strip()
    return out


def _find(props: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in props:
            return props[key]
    return None


def _size(field: str, raw: str | None, limits: SizeLimits) -> float:
    if raw is None or raw == "":
        raise InvalidGridRequest(field, "missing; add the drawer size in millimetres")
    text = raw.lower().replace(",", ".").removesuffix("mm").strip()
    try:
        value = float(text)
    except ValueError:
        raise InvalidGridRequest(field, f"{raw!r} is not a number of millimetres") from None
    if not math.isfinite(value):
        raise InvalidGridRequest(field, f"{raw!r} is not a number of millimetres")
    return check_size(field, _quantise(value), limits)


def check_size(field: str, value: float, limits: SizeLimits) -> float:
    """`value` if it is within the tenant's limits, else an error naming the range."""
    if not limits.min_mm <= value <= limits.max_mm:
        raise InvalidGridRequest(
            field,
            f"{_fmt(value)} mm is outside the allowed range "
            f"{_fmt(limits.min_mm)} to {_fmt(limits.max_mm)} mm (tenant setting "
            f"{'gridflock_max_mm' if value > limits.max_mm else 'gridflock_min_mm'})",
        )
    return value


def _flag(field: str, raw: str | None) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidGridRequest(field, f"{raw!r} is not yes or no")


def _connector(raw: str | None) -> ConnectorStyle:
    if raw is None or raw.strip() == "":
        return ConnectorStyle.PUZZLE
    text = raw.strip().lower()
    if text in {"puzzle", "jigsaw", "yes", "true"}:
        return ConnectorStyle.PUZZLE
    if text in {"none", "no", "false", "off", "without"}:
        return ConnectorStyle.NONE
    raise InvalidGridRequest("connector", f"{raw!r} is not one of: puzzle, none")


def parse_line_item(
    properties: Mapping[str, object] | Iterable[Mapping[str, object]],
    profile: PrinterProfile,
    limits: SizeLimits | None = None,
    defaults: PlanOptions | None = None,
) -> GridRequest:
    """Read width/depth (mm), magnets and connector from a line item's properties.

    Names are matched loosely (`Width (mm)`, `drawer_width`, `width`) because shop themes label
    them freely; values accept `523`, `523 mm`, `523,5`. Any problem is an `InvalidGridRequest`
    whose message can be shown to the operator as the hold reason. `defaults` (the tenant's
    settings or a preset) give everything the properties do not say; a `Magnets` or `Connector`
    property still switches those.
    """
    props = _pairs(properties)
    lim = limits or SizeLimits()
    base = defaults or PlanOptions()
    width = _size("width", _find(props, _WIDTH_KEYS), lim)
    depth = _size("depth", _find(props, _DEPTH_KEYS), lim)
    magnets_raw = _find(props, _MAGNET_KEYS)
    connector_raw = _find(props, _CONNECTOR_KEYS)
    options = replace(
        base,
        magnets=base.magnets if magnets_raw is None else _flag("magnets", magnets_raw),
        connector=base.connector if connector_raw is None else _connector(connector_raw),
    )
    return GridRequest(width, depth, options, profile)
