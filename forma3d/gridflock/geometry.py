"""Plate solids on the Manifold kernel (`manifold3d`), in process: the same plate as
`slicer/gridflock_plate.scad`, built from the same `-D` parameters, in milliseconds.

OpenSCAD 2021.01 renders with CGAL's exact arithmetic, several seconds per plate; Manifold is a
robust floating-point kernel with guaranteed manifold output, hundreds of times faster. The
`.scad` stays the reference: every figure and construction here mirrors it one to one (same
outlines, same point counts, same polygons), and `tests/forma3d/gridflock/test_gridflock_engines.py`
compares both engines' meshes on random plates. Change one, change the other.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from manifold3d import CrossSection, Manifold, OpType
from numpy.typing import NDArray

# --- fixed figures, as in gridflock_plate.scad ----------------------------------------------
PITCH = 42.0
CORNER_R = 4.0
PROFILE_H = 4.65
PROFILE = ((0.0, 2.85), (0.7, 2.15), (2.5, 2.15), (4.65, 0.0))
"""[height above the socket floor, inset from the cell edge], bottom to top."""
MAGNET_D = 6.5
"""Default magnet hole; a plate's own (`PlateSpec.magnet_d`, `magnet_depth`) is a parameter."""
MAGNET_DEPTH = 2.4
MAGNET_INSET = 8.0
MAGNET_FN = 24
TAB_DEPTH = 1.8
TAB_NECK = 6.0
TAB_HEAD = 9.0
TAB_TOP = 2.3
CLEARANCE = 0.15
EMBOSS = 0.5
DIGIT_H = 8.0
DIGIT_W = 4.5
DIGIT_STROKE = 1.1
ARC_STEPS = 6

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class PlateSpec:
    """The `.scad`'s parameters as typed values (parsed from `stl.scad_parameters`)."""

    cells_x: float
    cells_y: float
    pad_n: float
    pad_e: float
    pad_s: float
    pad_w: float
    floor_mm: float
    magnets: bool
    round_sw: bool
    round_se: bool
    round_ne: bool
    round_nw: bool
    conn_n: tuple[float, ...]
    conn_e: tuple[float, ...]
    conn_s: tuple[float, ...]
    conn_w: tuple[float, ...]
    plate_number: int
    magnet_d: float = MAGNET_D
    magnet_depth: float = MAGNET_DEPTH

    @classmethod
    def from_scad(cls, params: Mapping[str, str]) -> PlateSpec:
        """Read the `-D` strings, so both engines are driven by one parameter mapping."""

        def num(name: str) -> float:
            return float(params[name])

        def flag(name: str) -> bool:
            return params[name] == "true"

        def nums(name: str) -> tuple[float, ...]:
            inner = params[name].strip("[]")
            return tuple(float(v) for v in inner.split(",") if v.strip())

        return cls(
            num("cells_x"), num("cells_y"), num("pad_n"), num("pad_e"), num("pad_s"),
            num("pad_w"), num("floor_mm"), flag("magnets"), flag("round_sw"),
            flag("round_se"), flag("round_ne"), flag("round_nw"), nums("conn_n"),
            nums("conn_e"), nums("conn_s"), nums("conn_w"), int(params["plate_number"]),
            float(params.get("magnet_d", MAGNET_D)),
            float(params.get("magnet_depth", MAGNET_DEPTH)))

    @property
    def width(self) -> float:
        return self.cells_x * PITCH + self.pad_w + self.pad_e

    @property
    def depth(self) -> float:
        return self.cells_y * PITCH + self.pad_s + self.pad_n

    @property
    def height(self) -> float:
        return self.floor_mm + PROFILE_H


# --- 2D outlines --------------------------------------------------------------------------------

def _arc(cx: float, cy: float, r: float, a0: float) -> list[Point]:
    return [(cx + r * math.cos(math.radians(a0 + 90 * i / ARC_STEPS)),
             cy + r * math.sin(math.radians(a0 + 90 * i / ARC_STEPS)))
            for i in range(ARC_STEPS + 1)]


def _corner(cx: float, cy: float, r: float, a0: float, rounded: bool) -> list[Point]:
    if rounded:
        return _arc(cx, cy, r, a0)
    a = math.radians(a0 + 45)
    return [(cx + r * math.sqrt(2) * math.cos(a), cy + r * math.sqrt(2) * math.sin(a))]


def _outline(x0: float, y0: float, x1: float, y1: float, r: float,
             rounds: Sequence[bool] = (True, True, True, True)) -> list[Point]:
    """Rounded rectangle, counter-clockwise; `rounds` is [sw, se, ne, nw]."""
    return (_corner(x1 - r, y0 + r, r, -90, rounds[1])
            + _corner(x1 - r, y1 - r, r, 0, rounds[2])
            + _corner(x0 + r, y1 - r, r, 90, rounds[3])
            + _corner(x0 + r, y0 + r, r, 180, rounds[0]))


def _dovetail(grow: float, reach: float) -> list[Point]:
    """Edge coordinates: u along the edge, v outwards."""
    return [(-TAB_NECK / 2 - grow, -reach), (TAB_NECK / 2 + grow, -reach),
            (TAB_NECK / 2 + grow, 0.0), (TAB_HEAD / 2 + grow, TAB_DEPTH + grow),
            (-TAB_HEAD / 2 - grow, TAB_DEPTH + grow), (-TAB_NECK / 2 - grow, 0.0)]


def _on_edge(points: list[Point], side: int, u: float, spec: PlateSpec) -> list[Point]:
    """Place edge-local points on an edge: 0 north, 1 east, 2 south, 3 west (`on_edge`)."""
    if side == 0:
        return [(u + a, spec.depth + b) for a, b in points]
    if side == 2:
        return [(u + a, b) for a, b in points]
    x0 = spec.width if side == 1 else 0.0
    return [(x0 + b, u - a) for a, b in points]  # rotate(-90): (a, b) -> (b, -a)


def _prism(points: list[Point], z0: float, height: float) -> Manifold:
    return CrossSection([points]).extrude(height).translate((0.0, 0.0, z0))


# --- 3D parts -----------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _cell_cut(sx: float, sy: float, floor_mm: float, magnets: bool,
              magnet_d: float = MAGNET_D, magnet_depth: float = MAGNET_DEPTH) -> Manifold:
    """One cell's socket, at the origin: the loft as one hull per profile band (each band joins
    two rounded rectangles of equal point count whose arcs share centres, so it is convex and its
    hull is exactly the `.scad`'s polyhedron), plus the magnet holes of a whole cell."""
    levels = [(floor_mm + h, _outline(i, i, sx - i, sy - i, CORNER_R - i)) for h, i in PROFILE]
    bands = [
        Manifold.hull_points([(x, y, z) for z, pts in (lo, hi) for x, y in pts])
        for lo, hi in itertools.pairwise(levels)
    ]
    cut = Manifold.batch_boolean(bands, OpType.Add)
    if magnets and sx == PITCH and sy == PITCH:
        r = magnet_d / 2
        angles = [2 * math.pi * i / MAGNET_FN for i in range(MAGNET_FN)]
        circle = [(r * math.cos(a), r * math.sin(a)) for a in angles]
        hole = _prism(circle, floor_mm - magnet_depth, magnet_depth + 1)
        holes = [hole.translate((dx, dy, 0.0)) for dx in (MAGNET_INSET, PITCH - MAGNET_INSET)
                 for dy in (MAGNET_INSET, PITCH - MAGNET_INSET)]
        cut = Manifold.batch_boolean([cut, *holes], OpType.Add)
    return cut


_SEGMENTS = (
    (0.0, DIGIT_H - DIGIT_STROKE, DIGIT_W, DIGIT_STROKE),
    (DIGIT_W - DIGIT_STROKE, (DIGIT_H - DIGIT_STROKE) / 2, DIGIT_STROKE,
     DIGIT_H - (DIGIT_H - DIGIT_STROKE) / 2),
    (DIGIT_W - DIGIT_STROKE, 0.0, DIGIT_STROKE, (DIGIT_H - DIGIT_STROKE) / 2 + DIGIT_STROKE),
    (0.0, 0.0, DIGIT_W, DIGIT_STROKE),
    (0.0, 0.0, DIGIT_STROKE, (DIGIT_H - DIGIT_STROKE) / 2 + DIGIT_STROKE),
    (0.0, (DIGIT_H - DIGIT_STROKE) / 2, DIGIT_STROKE, DIGIT_H - (DIGIT_H - DIGIT_STROKE) / 2),
    (0.0, (DIGIT_H - DIGIT_STROKE) / 2, DIGIT_W, DIGIT_STROKE),
)
_DIGITS = ((0, 1, 2, 3, 4, 5), (1, 2), (0, 1, 3, 4, 6), (0, 1, 2, 3, 6), (1, 2, 5, 6),
           (0, 2, 3, 5, 6), (0, 2, 3, 4, 5, 6), (0, 1, 2), (0, 1, 2, 3, 4, 5, 6),
           (0, 1, 2, 3, 5, 6))


def _number_cut(spec: PlateSpec) -> Manifold:
    """Seven-segment plate number under the south-west cell, mirrored to read from below."""
    text = str(spec.plate_number)
    gap = DIGIT_W * 0.45
    total = len(text) * DIGIT_W + (len(text) - 1) * gap
    rects: list[CrossSection] = []
    for k, ch in enumerate(text):
        ox = -total / 2 + k * (DIGIT_W + gap)
        for seg in _DIGITS[ord(ch) - 48]:
            x, y, w, h = _SEGMENTS[seg]
            rects.append(CrossSection.square((w, h)).translate((ox + x, -DIGIT_H / 2 + y)))
    shape = CrossSection.batch_boolean(rects, OpType.Add).mirror((1.0, 0.0))
    return shape.extrude(EMBOSS + 1).translate(
        (spec.pad_w + PITCH / 2, spec.pad_s + PITCH / 2, -1.0))


def plate_solid(spec: PlateSpec) -> Manifold:
    """The plate: body plus male tabs, minus cell sockets, female sockets and the number."""
    rounds = (spec.round_sw, spec.round_se, spec.round_ne, spec.round_nw)
    body = _prism(_outline(0.0, 0.0, spec.width, spec.depth, CORNER_R, rounds), 0.0, spec.height)
    tab_h = spec.floor_mm + TAB_TOP
    male = [_prism(_on_edge(_dovetail(0.0, 0.5), side, u, spec), 0.0, tab_h)
            for side, positions in ((0, spec.conn_n), (1, spec.conn_e)) for u in positions]
    solid = Manifold.batch_boolean([body, *male], OpType.Add) if male else body

    whole_x, whole_y = math.floor(spec.cells_x), math.floor(spec.cells_y)
    cuts: list[Manifold] = []
    for i in range(math.ceil(spec.cells_x)):
        for j in range(math.ceil(spec.cells_y)):
            sx = PITCH if i < whole_x else PITCH / 2
            sy = PITCH if j < whole_y else PITCH / 2
            cuts.append(_cell_cut(sx, sy, spec.floor_mm, spec.magnets, spec.magnet_d,
                                  spec.magnet_depth).translate(
                (spec.pad_w + i * PITCH, spec.pad_s + j * PITCH, 0.0)))
    socket_h = spec.floor_mm + TAB_TOP + CLEARANCE + 1
    for side, positions in ((2, spec.conn_s), (3, spec.conn_w)):
        for u in positions:
            cuts.append(_prism(_on_edge(_dovetail(CLEARANCE, 1.0), side, u, spec), -1.0, socket_h))
    cuts.append(_number_cut(spec))
    return Manifold.batch_boolean([solid, *cuts], OpType.Subtract)


def mesh_arrays(solid: Manifold) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Vertices (n x 3) and triangles (m x 3 indices, counter-clockwise from outside)."""
    mesh = solid.to_mesh()
    verts = np.asarray(mesh.vert_properties, dtype=np.float64)[:, :3]
    tris = np.asarray(mesh.tri_verts, dtype=np.int64)
    return verts, tris


def stl_bytes(solid: Manifold) -> bytes:
    """Binary STL of the solid (what the slicers read).

    Where a socket's rim meets the plate's outline exactly (a rounded outer corner), the kernel
    keeps the zero-thickness wall as two coincident copies of the rim joined by zero-area
    triangles; CGAL merges them. Welding equal float32 positions (as STL readers do) and dropping
    the triangles that collapse gives CGAL's closed surface.
    """
    verts, tris = mesh_arrays(solid)
    keys = np.ascontiguousarray(verts, dtype=np.float32).view(np.int32)
    _, welded = np.unique(keys, axis=0, return_inverse=True)
    ids = welded.reshape(-1)[tris]
    keep = (ids[:, 0] != ids[:, 1]) & (ids[:, 1] != ids[:, 2]) & (ids[:, 2] != ids[:, 0])
    corners = verts[tris[keep]]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    record = np.dtype([("normal", "<f4", (3,)), ("corners", "<f4", (3, 3)), ("attr", "<u2")])
    rows = np.zeros(len(corners), dtype=record)
    rows["normal"] = normals
    rows["corners"] = corners
    header = b"forma3d gridflock plate (manifold3d)".ljust(80, b" ")
    return header + np.uint32(len(corners)).tobytes() + rows.tobytes()
