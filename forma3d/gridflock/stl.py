"""STL generation, one unique plate per call by either engine, and the checks on every STL.

Two engines make the same plate from the same parameters (`scad_parameters`): the Manifold
kernel in this process (`forma3d.gridflock.geometry`, milliseconds) and OpenSCAD 2021.01 as a
subprocess (the reference, seconds). Both write to a temp file, pass `check_mesh` and are renamed
into place, so readers never see half a file or an unchecked one.

Our own `slicer/gridflock_plate.scad` renders one plate from -D parameters (see
`scad_parameters`). A tenant may instead run its own checkout of the upstream GridFlock project
(`GRIDFLOCK_DIR`); nothing of it is committed here, only the parameter mapping in
`upstream_parameters`. Upstream's `gridflock.scad` splits the drawer itself and renders every
plate of the set into one STL, so that hook works on a whole `PlateSet`, not a single plate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from stl import mesh as stl_mesh

from forma3d.domain.gridflock.errors import MeshCheckFailed, Step
from forma3d.domain.gridflock.planner import PROFILE_HEIGHT_MM, ConnectorStyle, Plate, PlateSet
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock import geometry
from forma3d.gridflock.tools import SLICER_DIR, resolve_binary, run_tool

SCAD_FILE = SLICER_DIR / "gridflock_plate.scad"
GEOMETRY_FILE = Path(geometry.__file__)
"""The manifold engine's source: part of its cache key, as the .scad is of OpenSCAD's."""
UPSTREAM_ENTRY = "gridflock.scad"
DEFAULT_TIMEOUT_S = 900.0
BBOX_TOLERANCE_MM = 0.1


@dataclass(frozen=True, slots=True)
class MeshReport:
    triangles: int
    size_mm: tuple[float, float, float]
    volume_mm3: float


@dataclass(frozen=True, slots=True)
class StlResult:
    path: Path
    seconds: float
    mesh: MeshReport


def openscad_binary() -> str:
    return resolve_binary(
        Step.GENERATING_STL,
        "OpenSCAD",
        "OPENSCAD_BIN",
        "openscad",
        "install Debian's openscad (scripts/bootstrap does) or set OPENSCAD_BIN",
    )


_versions: dict[str, str] = {}


async def openscad_version() -> str:
    """`2021.01` style version, part of the cache key: a new OpenSCAD may mesh differently.

    Remembered per binary path for the life of the process (workers ask on every plate).
    """
    binary = openscad_binary()
    if binary not in _versions:
        run = await run_tool(Step.GENERATING_STL, [binary, "--version"], timeout_s=30)
        text = run.stderr + run.stdout
        m = re.search(r"OpenSCAD version (\S+)", text)
        _versions[binary] = m.group(1) if m else text.strip() or "unknown"
    return _versions[binary]


def manifold_version() -> str:
    """The installed `manifold3d`, part of the cache key like OpenSCAD's version."""
    try:
        return metadata.version("manifold3d")
    except metadata.PackageNotFoundError:
        return "unknown"


def _scad_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ",".join(_scad_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def scad_parameters(plate: Plate) -> dict[str, str]:
    """The -D values for `gridflock_plate.scad`; everything that shapes the solid, nothing else."""
    c, p, r = plate.connectors, plate.padding, plate.corners
    values: dict[str, object] = {
        "cells_x": plate.cells_x,
        "cells_y": plate.cells_y,
        "pad_n": p.north,
        "pad_e": p.east,
        "pad_s": p.south,
        "pad_w": p.west,
        "floor_mm": round(plate.height_mm - PROFILE_HEIGHT_MM, 3),
        "magnets": plate.magnets,
        "magnet_d": plate.magnet_diameter_mm,
        "magnet_depth": plate.magnet_depth_mm,
        "round_sw": r.south_west,
        "round_se": r.south_east,
        "round_ne": r.north_east,
        "round_nw": r.north_west,
        "conn_n": c.north.positions,
        "conn_e": c.east.positions,
        "conn_s": c.south.positions,
        "conn_w": c.west.positions,
        "plate_number": plate.number,
    }
    return {k: _scad_value(v) for k, v in values.items()}


def upstream_parameters(plate_set: PlateSet) -> dict[str, str]:
    """Our plan options mapped onto upstream GridFlock's customizer variables.

    | upstream variable               | from                                   |
    |---------------------------------|----------------------------------------|
    | `bed_size`                      | `[profile.bed_x_mm, profile.bed_y_mm]` |
    | `plate_size`                    | `[width_mm, depth_mm]` of the drawer   |
    | `do_half_x`, `do_half_y`        | `true` (we allow half cells)           |
    | `magnets`                       | `options.magnets`                      |
    | `connector_edge_puzzle`         | `options.connector == puzzle`          |
    | `connector_intersection_puzzle` | `false` (we use edge puzzles only)     |
    | `numbering`                     | `true`                                 |
    | `plate_corner_radius`           | `4`                                    |
    """
    prof, opts = plate_set.profile, plate_set.options
    values: dict[str, object] = {
        "bed_size": (prof.bed_x_mm, prof.bed_y_mm),
        "plate_size": (plate_set.width_mm, plate_set.depth_mm),
        "do_half_x": True,
        "do_half_y": True,
        "magnets": opts.magnets,
        "connector_edge_puzzle": opts.connector is ConnectorStyle.PUZZLE,
        "connector_intersection_puzzle": False,
        "numbering": True,
        "plate_corner_radius": 4,
    }
    return {k: _scad_value(v) for k, v in values.items()}


def _define_args(params: dict[str, str]) -> list[str]:
    out: list[str] = []
    for name, value in params.items():
        out += ["-D", f"{name}={value}"]
    return out


def _prepare(scad: Path, out_path: Path) -> Path:
    if not scad.is_file():
        raise MeshCheckFailed(Step.GENERATING_STL, f"OpenSCAD source {scad} does not exist")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".render-", suffix=".stl", dir=out_path.parent)
    os.close(fd)
    return Path(tmp_name)


def _finish(
    tmp: Path, out_path: Path, expected_size: tuple[float, float, float] | None
) -> MeshReport:
    try:
        report = check_mesh(tmp, expected_size)
        os.replace(tmp, out_path)
        return report
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


async def _render(
    scad: Path,
    params: dict[str, str],
    out_path: Path,
    expected_size: tuple[float, float, float] | None,
    timeout_s: float,
) -> StlResult:
    """Render to a temp file beside `out_path`, check it, then rename: readers never see half.

    File work and the mesh check run in a thread; a big plate's check takes a while.
    """
    binary = openscad_binary()
    tmp = await asyncio.to_thread(_prepare, scad, out_path)
    try:
        argv = [binary, "-o", str(tmp), *_define_args(params), str(scad)]
        run = await run_tool(Step.GENERATING_STL, argv, timeout_s=timeout_s, cwd=scad.parent)
        errors = [ln for ln in run.stderr.splitlines() if "ERROR:" in ln]
        if errors:
            raise MeshCheckFailed(Step.GENERATING_STL, "OpenSCAD reported " + errors[0].strip())
    except BaseException:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
        raise
    report = await asyncio.to_thread(_finish, tmp, out_path, expected_size)
    return StlResult(out_path, run.seconds, report)


async def generate_plate_stl(
    plate: Plate, out_path: Path, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> StlResult:
    """Render one unique plate with our `.scad` and check it against the plan."""
    return await _render(SCAD_FILE, scad_parameters(plate), out_path, plate.extent_mm, timeout_s)


def _build_manifold(plate: Plate, out_path: Path) -> StlResult:
    started = time.perf_counter()
    spec = geometry.PlateSpec.from_scad(scad_parameters(plate))
    data = geometry.stl_bytes(geometry.plate_solid(spec))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".render-", suffix=".stl", dir=out_path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    seconds = time.perf_counter() - started
    return StlResult(out_path, seconds, _finish(Path(tmp_name), out_path, plate.extent_mm))


async def generate_plate_stl_manifold(plate: Plate, out_path: Path) -> StlResult:
    """Build one plate on the Manifold kernel (in a thread: the kernel holds no event loop) and
    check it against the plan like OpenSCAD's output. `seconds` is the build, not the check."""
    try:
        return await asyncio.to_thread(_build_manifold, plate, out_path)
    except MeshCheckFailed:
        raise
    except Exception as error:  # the kernel's own errors: a failure at this step, named
        raise MeshCheckFailed(Step.GENERATING_STL,
                              f"manifold3d failed: {type(error).__name__}: {error}") from error


async def generate_plate(plate: Plate, out_path: Path, engine: GridflockEngine,
                         *, timeout_s: float = DEFAULT_TIMEOUT_S) -> StlResult:
    """One plate by the chosen engine."""
    if engine == "manifold":
        return await generate_plate_stl_manifold(plate, out_path)
    return await generate_plate_stl(plate, out_path, timeout_s=timeout_s)


async def generate_set_stl_upstream(
    plate_set: PlateSet,
    out_path: Path,
    *,
    gridflock_dir: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> StlResult:
    """Render the whole set with the tenant's upstream checkout (`GRIDFLOCK_DIR`).

    Upstream lays all plates out in one STL with gaps between them, so only the closed-mesh and
    volume checks apply; the bounding box is not compared with our plan.
    """
    root = gridflock_dir or (Path(d) if (d := os.environ.get("GRIDFLOCK_DIR")) else None)
    if root is None:
        raise MeshCheckFailed(Step.GENERATING_STL, "GRIDFLOCK_DIR is not set")
    entry = root / UPSTREAM_ENTRY
    if not entry.is_file():
        raise MeshCheckFailed(
            Step.GENERATING_STL, f"{entry} not found: GRIDFLOCK_DIR must be a GridFlock checkout"
        )
    return await _render(entry, upstream_parameters(plate_set), out_path, None, timeout_s)


def check_mesh(path: Path, expected_size: tuple[float, float, float] | None) -> MeshReport:
    """Closed (every edge in exactly two faces), right size (±0.1 mm), and a sane volume."""

    def fail(reason: str) -> MeshCheckFailed:
        return MeshCheckFailed(Step.GENERATING_STL, f"{path.name}: {reason}")

    try:
        m = stl_mesh.Mesh.from_file(str(path))
    except Exception as exc:  # numpy-stl raises bare errors for unreadable files
        raise fail(f"unreadable STL ({exc})") from exc
    tris = np.asarray(m.vectors, dtype=np.float64)
    if len(tris) == 0:
        raise fail("empty mesh")
    # Weld vertices with bit-identical coordinates (as written), then count each edge.
    keys = np.ascontiguousarray(m.vectors, dtype=np.float32).reshape(-1, 3).view(np.int32)
    _, ids = np.unique(keys, axis=0, return_inverse=True)
    ids = ids.reshape(-1, 3)
    edges = np.concatenate([ids[:, [0, 1]], ids[:, [1, 2]], ids[:, [2, 0]]])
    undirected = np.sort(edges, axis=1)
    _, counts = np.unique(undirected, axis=0, return_counts=True)
    bad = int(np.count_nonzero(counts != 2))
    if bad:
        raise fail(f"not closed: {bad} edges are not shared by exactly two faces")
    lo, hi = tris.reshape(-1, 3).min(axis=0), tris.reshape(-1, 3).max(axis=0)
    size = tuple(round(float(v), 4) for v in hi - lo)
    size3 = (size[0], size[1], size[2])
    if expected_size is not None:
        off = [abs(a - b) for a, b in zip(size3, expected_size, strict=True)]
        if max(off) > BBOX_TOLERANCE_MM:
            raise fail(f"bounding box {size3} mm differs from the plan {expected_size} mm")
    # Signed tetrahedra against the origin; positive when the faces point outwards.
    volume = float(np.einsum("ij,ij->i", tris[:, 0], np.cross(tris[:, 1], tris[:, 2])).sum() / 6)
    box = size3[0] * size3[1] * size3[2]
    if not 0 < volume <= box * (1 + 1e-6):
        raise fail(f"volume {volume:.1f} mm³ is not between 0 and the bounding box {box:.1f} mm³")
    return MeshReport(triangles=len(tris), size_mm=size3, volume_mm3=round(volume, 3))
