"""Plate-set planner: split a drawer into bed-sized Gridfinity plates that lock together.

Pure and deterministic (it runs on every keystroke of the preview), so it is cached and does no
I/O. Rules, from the issue:

* 42 mm pitch; whole cells, with at most one half cell per axis (at the east / north end).
* The leftover below a half cell is solid padding, split evenly between opposite sides and
  attached to the outermost plates only.
* Along X: the fewest columns whose widths are as equal as possible.
* Along Y: each column is split into rows; neighbouring columns alternate two row plans whose
  seams never coincide, so every seam meets another as a T-joint, never a four-way corner.
* Every plate plus its protruding connectors fits the bed minus a connector margin.
* Connectors only on inner edges: male on north/east, female on south/west, one per whole cell.
* Rounded corners only on the set's four outer corners.

Plates with the same canonical key are identical, so they share a number and are generated and
sliced once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from forma3d.domain.gridflock.errors import PlanError
from forma3d.domain.gridflock.profiles import PrinterProfile, SliceSettings
from forma3d.domain.tenants import (
    GRIDFLOCK_CEILING_MM,
    MAGNET_DEPTH_MM,
    MAGNET_DIAMETER_MM,
    MARGIN_MM,
)

PITCH_MM = 42.0
HALF_MM = PITCH_MM / 2
CONNECTOR_MARGIN_MM = MARGIN_MM
"""Kept off the bed size on each axis by default: room for the male tabs (see
`CONNECTOR_DEPTH_MM`); a tenant or preset may keep more (`PlanOptions.margin_mm`)."""
CONNECTOR_DEPTH_MM = 1.8
"""How far a male tab sticks out of its edge: it must sit inside the neighbour's 2.15 mm wall."""
PROFILE_HEIGHT_MM = 4.65
FLOOR_MM = 1.2
"""Solid floor under the sockets: carries the embossed plate number and stiffens the plate."""
MAGNET_FLOOR_MM = 3.0
"""With magnets the floor must hold 2.4 mm deep holes and still leave a skin below them."""
MAGNET_SKIN_MM = MAGNET_FLOOR_MM - MAGNET_DEPTH_MM
"""Solid left below a magnet hole: deeper magnets make a thicker floor."""

MIN_USABLE_MM = 3 * PITCH_MM
"""Two cells, a half cell and both paddings: with less, a drawer of two and a half cells needs two
rows split at its only seam, so neighbouring columns could not be staggered."""

COMPOSITION_BUDGET = 50_000
"""Row plans the stagger search may list for one drawer: the fixed cost ceiling of a plan. Every
drawer up to `GRIDFLOCK_CEILING_MM` needs at most about 6,000 (Bambu A1 mini, 986 mm deep)."""

EdgeKind = Literal["none", "male", "female"]


class ConnectorStyle(StrEnum):
    PUZZLE = "puzzle"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class PlanOptions:
    """Everything chosen about a plate set besides its size and printer: the magnets (with
    their hole), the connectors, the bed margin and brim (both shrink the usable bed), and the
    filament it is sliced for."""

    magnets: bool = False
    connector: ConnectorStyle = ConnectorStyle.PUZZLE
    magnet_diameter_mm: float = MAGNET_DIAMETER_MM
    magnet_depth_mm: float = MAGNET_DEPTH_MM
    margin_mm: float = MARGIN_MM
    brim_mm: float = 0.0
    filament: str = "pla"

    def __post_init__(self) -> None:
        if not self.magnets:  # without magnets their hole is no choice: one canonical form
            object.__setattr__(self, "magnet_diameter_mm", MAGNET_DIAMETER_MM)
            object.__setattr__(self, "magnet_depth_mm", MAGNET_DEPTH_MM)

    @property
    def floor_mm(self) -> float:
        if not self.magnets:
            return FLOOR_MM
        return round(max(MAGNET_FLOOR_MM, self.magnet_depth_mm + MAGNET_SKIN_MM), 3)

    @property
    def custom_magnet(self) -> bool:
        """A magnet hole other than the default 6.5 x 2.4 mm (it then names itself in keys)."""
        return self.magnets and (self.magnet_diameter_mm, self.magnet_depth_mm) != (
            MAGNET_DIAMETER_MM, MAGNET_DEPTH_MM)

    @property
    def slicing(self) -> SliceSettings:
        return SliceSettings(brim_mm=self.brim_mm, filament=self.filament)

    @property
    def bed_loss_mm(self) -> float:
        """Kept off each bed axis: the margin plus a brim on both sides of the plate."""
        return self.margin_mm + 2 * self.brim_mm

    @property
    def height_mm(self) -> float:
        return self.floor_mm + PROFILE_HEIGHT_MM


@dataclass(frozen=True, slots=True)
class Padding:
    north: float = 0.0
    east: float = 0.0
    south: float = 0.0
    west: float = 0.0


@dataclass(frozen=True, slots=True)
class Edge:
    """One plate edge: connector kind and the tab centres, in mm from the edge's west/south end."""

    kind: EdgeKind = "none"
    positions: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Connectors:
    north: Edge = Edge()
    east: Edge = Edge()
    south: Edge = Edge()
    west: Edge = Edge()


@dataclass(frozen=True, slots=True)
class Corners:
    """Which plate corners are rounded (only the set's outer corners are)."""

    south_west: bool = False
    south_east: bool = False
    north_east: bool = False
    north_west: bool = False


@dataclass(frozen=True, slots=True)
class Plate:
    """A unique plate; `count` copies of it are printed, all embossed with `number`."""

    number: int
    cells_x: float
    cells_y: float
    padding: Padding
    connectors: Connectors
    corners: Corners
    magnets: bool
    height_mm: float
    count: int
    key: str
    magnet_diameter_mm: float = MAGNET_DIAMETER_MM
    magnet_depth_mm: float = MAGNET_DEPTH_MM

    @property
    def width_mm(self) -> float:
        return round(self.cells_x * PITCH_MM + self.padding.west + self.padding.east, 3)

    @property
    def depth_mm(self) -> float:
        return round(self.cells_y * PITCH_MM + self.padding.south + self.padding.north, 3)

    @property
    def key_hash(self) -> str:
        """Short stable id of the plate's geometry, for file names and cache keys."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    @property
    def extent_mm(self) -> tuple[float, float, float]:
        """Bounding box of the generated solid: the body plus male tabs on north/east."""
        tab_x = CONNECTOR_DEPTH_MM if self.connectors.east.kind == "male" else 0.0
        tab_y = CONNECTOR_DEPTH_MM if self.connectors.north.kind == "male" else 0.0
        return (self.width_mm + tab_x, self.depth_mm + tab_y, self.height_mm)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one printed copy goes in the drawer: column, row and south-west corner in mm."""

    number: int
    column: int
    row: int
    x_mm: float
    y_mm: float
    width_mm: float
    depth_mm: float


@dataclass(frozen=True, slots=True)
class PlateSet:
    width_mm: float
    depth_mm: float
    profile: PrinterProfile
    options: PlanOptions
    cells_x: float
    cells_y: float
    padding: Padding
    plates: tuple[Plate, ...]
    placements: tuple[Placement, ...]
    columns: int = field(default=1)

    @property
    def total_plates(self) -> int:
        return len(self.placements)

    def plate(self, number: int) -> Plate:
        return self.plates[number - 1]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (snake_case), for the preview API and job records."""
        return {
            "width_mm": self.width_mm,
            "depth_mm": self.depth_mm,
            "printer_profile": self.profile.id,
            "magnets": self.options.magnets,
            "magnet_diameter_mm": self.options.magnet_diameter_mm,
            "magnet_depth_mm": self.options.magnet_depth_mm,
            "connector": self.options.connector.value,
            "margin_mm": self.options.margin_mm,
            "brim_mm": self.options.brim_mm,
            "filament": self.options.filament,
            "cells_x": self.cells_x,
            "cells_y": self.cells_y,
            "padding": _padding_dict(self.padding),
            "columns": self.columns,
            "total_plates": self.total_plates,
            "unique_plates": len(self.plates),
            "plates": [
                {
                    "number": p.number,
                    "count": p.count,
                    "cells_x": p.cells_x,
                    "cells_y": p.cells_y,
                    "width_mm": p.width_mm,
                    "depth_mm": p.depth_mm,
                    "height_mm": p.height_mm,
                    "padding": _padding_dict(p.padding),
                    "connectors": {
                        side: {"kind": e.kind, "positions": list(e.positions)}
                        for side, e in _edges(p.connectors)
                    },
                    "rounded_corners": [name for name, on in _corners(p.corners) if on],
                    "key": p.key_hash,
                }
                for p in self.plates
            ],
            "placements": [
                {
                    "number": pl.number,
                    "column": pl.column,
                    "row": pl.row,
                    "x_mm": pl.x_mm,
                    "y_mm": pl.y_mm,
                    "width_mm": pl.width_mm,
                    "depth_mm": pl.depth_mm,
                }
                for pl in self.placements
            ],
        }


def _padding_dict(p: Padding) -> dict[str, float]:
    return {"north": p.north, "east": p.east, "south": p.south, "west": p.west}


def _edges(c: Connectors) -> tuple[tuple[str, Edge], ...]:
    return (("north", c.north), ("east", c.east), ("south", c.south), ("west", c.west))


def _corners(c: Corners) -> tuple[tuple[str, bool], ...]:
    return (
        ("south_west", c.south_west),
        ("south_east", c.south_east),
        ("north_east", c.north_east),
        ("north_west", c.north_west),
    )


@dataclass(frozen=True, slots=True)
class _Axis:
    """One axis of the drawer: whole cells, an optional half cell at the far end, padding."""

    whole: int
    half: bool
    pad_low: float
    pad_high: float

    @property
    def cells(self) -> float:
        return self.whole + (0.5 if self.half else 0.0)

    def span(self, index: int, count: int, cells: int) -> float:
        """Length of segment `index` of `count` holding `cells` whole cells."""
        length = cells * PITCH_MM
        if index == 0:
            length += self.pad_low
        if index == count - 1:
            length += self.pad_high + (HALF_MM if self.half else 0.0)
        return length


def _axis(length_mm: float, name: str) -> _Axis:
    halves = math.floor(length_mm / HALF_MM + 1e-9)
    whole, half = divmod(halves, 2)
    if whole < 1:
        raise PlanError(f"{name} {length_mm:g} mm is smaller than one {PITCH_MM:g} mm cell")
    pad = round((length_mm - halves * HALF_MM) / 2, 4)
    return _Axis(whole=whole, half=bool(half), pad_low=pad, pad_high=pad)


def _balanced(axis: _Axis, count: int) -> list[int]:
    """Cells per segment minimising the longest segment (water-filling; ties go west/south)."""
    cells = [0] * count
    for _ in range(axis.whole):
        lengths = [axis.span(i, count, c) for i, c in enumerate(cells)]
        cells[lengths.index(min(lengths))] += 1
    return cells


def _fits(axis: _Axis, cells: list[int], usable: float) -> bool:
    n = len(cells)
    return all(c >= 1 and axis.span(i, n, c) <= usable + 1e-9 for i, c in enumerate(cells))


def _fewest(axis: _Axis, usable: float, what: str) -> list[int]:
    for count in range(1, axis.whole + 1):
        cells = _balanced(axis, count)
        if _fits(axis, cells, usable):
            return cells
    raise PlanError(f"the bed is too small for a single {PITCH_MM:g} mm cell {what}")


def _seams(cells: list[int]) -> frozenset[int]:
    """Inner seam positions, in whole cells from the low end."""
    out: set[int] = set()
    total = 0
    for c in cells[:-1]:
        total += c
        out.add(total)
    return frozenset(out)


def _staggered(axis: _Axis, usable: float, base: list[int]) -> list[int]:
    """A second row plan whose seams never coincide with `base`'s, as balanced as possible."""
    forbidden = _seams(base)
    most = math.floor((usable + 1e-9) / PITCH_MM)
    for count in range(len(base), len(base) + 3):
        mean = axis.whole / count
        for slack in (1, 2):
            lo, hi = max(1, math.floor(mean) - slack), min(most, math.ceil(mean) + slack)
            best: tuple[float, list[int]] | None = None
            for cells in _compositions(axis.whole, count, lo, hi,
                                       _stagger_rule(axis, count, usable, forbidden)):
                spans = [axis.span(i, count, c) for i, c in enumerate(cells)]
                spread = max(spans) - min(spans)
                if best is None or spread < best[0] - 1e-9:
                    best = (spread, cells)
            if best is not None:
                return best[1]
    raise PlanError("cannot stagger the row seams for this drawer and bed")


PartRule = Callable[[int, int, int], bool]
"""(index of the part, the part, the sum up to and including it) -> may the part stand there."""


def _stagger_rule(axis: _Axis, count: int, usable: float,
                  forbidden: frozenset[int]) -> PartRule:
    """A row fits the bed, and no seam (the sum after a row that is not the last) is one of the
    other row plan's."""

    def allowed(index: int, part: int, upto: int) -> bool:
        if index < count - 1 and upto in forbidden:
            return False
        return axis.span(index, count, part) <= usable + 1e-9

    return allowed


def _compositions(total: int, count: int, lo: int, hi: int,
                  rule: PartRule | None = None) -> list[list[int]]:
    """All ways to write `total` as `count` ordered parts in [lo, hi] whose every part the
    `rule` allows, in lexicographic order. The rule prunes while walking, so a drawer pays for
    the row plans that could be chosen, not for every composition."""
    out: list[list[int]] = []
    prefix: list[int] = []

    def walk(remaining: int, left: int) -> None:
        if left == 0:
            if remaining == 0:
                out.append(prefix.copy())
                if len(out) > COMPOSITION_BUDGET:
                    raise PlanError(f"the drawer needs more than {COMPOSITION_BUDGET} row "
                                    "plans to stagger its seams: too large to plan")
            return
        index = count - left
        for part in range(lo, hi + 1):
            rest = remaining - part
            if rest < lo * (left - 1) or rest > hi * (left - 1):
                continue
            if rule is not None and not rule(index, part, total - rest):
                continue
            prefix.append(part)
            walk(rest, left - 1)
            prefix.pop()

    walk(total, count)
    return out


def _tab_positions(pad_low: float, whole: int) -> tuple[float, ...]:
    return tuple(round(pad_low + PITCH_MM * i + HALF_MM, 3) for i in range(whole))


def _plate_key(
    cells_x: float,
    cells_y: float,
    padding: Padding,
    connectors: Connectors,
    corners: Corners,
    options: PlanOptions,
) -> str:
    """Canonical text of everything that shapes the solid; equal keys mean identical plates."""
    pad = ",".join(f"{v:.3f}" for v in _padding_dict(padding).values())
    edges = ";".join(
        f"{side}:{e.kind}@" + ",".join(f"{p:.3f}" for p in e.positions)
        for side, e in _edges(connectors)
    )
    rounded = "".join("1" if on else "0" for _, on in _corners(corners))
    magnet = (f"|magnet:{options.magnet_diameter_mm:g}x{options.magnet_depth_mm:g}"
              if options.custom_magnet else "")
    return (
        f"v1|cells:{cells_x:g}x{cells_y:g}|pad:{pad}|{edges}|round:{rounded}"
        f"|mag:{int(options.magnets)}|conn:{options.connector.value}{magnet}"
    )


def plan_plates(
    width_mm: float,
    depth_mm: float,
    profile: PrinterProfile,
    options: PlanOptions | None = None,
) -> PlateSet:
    """Split a drawer of `width_mm` (X) by `depth_mm` (Y) into plates for `profile`'s bed."""
    return _plan(
        round(float(width_mm), 3), round(float(depth_mm), 3), profile, options or PlanOptions()
    )


@lru_cache(maxsize=1024)
def _plan(width: float, depth: float, profile: PrinterProfile, options: PlanOptions) -> PlateSet:
    if not (math.isfinite(width) and math.isfinite(depth)) or width <= 0 or depth <= 0:
        raise PlanError("drawer width and depth must be positive numbers")
    if max(width, depth) > GRIDFLOCK_CEILING_MM:
        raise PlanError(f"a drawer side of {max(width, depth):g} mm is above the platform's "
                        f"limit of {GRIDFLOCK_CEILING_MM:g} mm")
    ax, ay = _axis(width, "width"), _axis(depth, "depth")
    usable_x = profile.bed_x_mm - options.bed_loss_mm
    usable_y = profile.bed_y_mm - options.bed_loss_mm
    if min(usable_x, usable_y) < MIN_USABLE_MM:
        raise PlanError(
            f"the bed of {profile.name} is too small: staggered seams need "
            f"{MIN_USABLE_MM + options.bed_loss_mm:g} mm on each axis (with a margin of "
            f"{options.margin_mm:g} mm and a brim of {options.brim_mm:g} mm)"
        )
    columns = _fewest(ax, usable_x, "along X")
    rows_a = _fewest(ay, usable_y, "along Y")
    rows_b = rows_a if len(columns) == 1 or len(rows_a) == 1 else _staggered(ay, usable_y, rows_a)
    puzzle = options.connector is ConnectorStyle.PUZZLE

    numbers: dict[str, int] = {}
    shapes: dict[str, tuple[float, float, Padding, Connectors, Corners]] = {}
    counts: dict[str, int] = {}
    placements: list[Placement] = []
    n_cols = len(columns)
    x = 0.0
    for ci, col_cells in enumerate(columns):
        rows = rows_a if ci % 2 == 0 else rows_b
        n_rows = len(rows)
        half_x = ax.half and ci == n_cols - 1
        cells_x = col_cells + (0.5 if half_x else 0.0)
        y = 0.0
        for ri, row_cells in enumerate(rows):
            half_y = ay.half and ri == n_rows - 1
            cells_y = row_cells + (0.5 if half_y else 0.0)
            padding = Padding(
                north=ay.pad_high if ri == n_rows - 1 else 0.0,
                east=ax.pad_high if ci == n_cols - 1 else 0.0,
                south=ay.pad_low if ri == 0 else 0.0,
                west=ax.pad_low if ci == 0 else 0.0,
            )
            along_x = _tab_positions(padding.west, col_cells)
            along_y = _tab_positions(padding.south, row_cells)

            def edge(inner: bool, kind: EdgeKind, positions: tuple[float, ...]) -> Edge:
                return Edge(kind, positions) if inner and puzzle else Edge()

            connectors = Connectors(
                north=edge(ri < n_rows - 1, "male", along_x),
                east=edge(ci < n_cols - 1, "male", along_y),
                south=edge(ri > 0, "female", along_x),
                west=edge(ci > 0, "female", along_y),
            )
            corners = Corners(
                south_west=ci == 0 and ri == 0,
                south_east=ci == n_cols - 1 and ri == 0,
                north_east=ci == n_cols - 1 and ri == n_rows - 1,
                north_west=ci == 0 and ri == n_rows - 1,
            )
            key = _plate_key(cells_x, cells_y, padding, connectors, corners, options)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                shapes[key] = (cells_x, cells_y, padding, connectors, corners)
                counts[key] = 0
            counts[key] += 1
            w = ax.span(ci, n_cols, col_cells)
            d = ay.span(ri, n_rows, row_cells)
            placements.append(
                Placement(numbers[key], ci, ri, round(x, 3), round(y, 3), round(w, 3), round(d, 3))
            )
            y += d
        x += ax.span(ci, n_cols, col_cells)

    plates = tuple(
        Plate(
            number=numbers[key],
            cells_x=cx,
            cells_y=cy,
            padding=pad,
            connectors=conn,
            corners=corn,
            magnets=options.magnets,
            height_mm=round(options.height_mm, 3),
            count=counts[key],
            key=key,
            magnet_diameter_mm=options.magnet_diameter_mm,
            magnet_depth_mm=options.magnet_depth_mm,
        )
        for key, (cx, cy, pad, conn, corn) in shapes.items()
    )
    return PlateSet(
        width_mm=width,
        depth_mm=depth,
        profile=profile,
        options=options,
        cells_x=ax.cells,
        cells_y=ay.cells,
        padding=Padding(ay.pad_high, ax.pad_high, ay.pad_low, ax.pad_low),
        plates=plates,
        placements=tuple(placements),
        columns=n_cols,
    )
