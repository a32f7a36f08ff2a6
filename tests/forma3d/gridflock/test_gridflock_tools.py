"""Faults at the external steps: each must surface as a typed error naming the step."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from forma3d.domain.gridflock.errors import (
    MeshCheckFailed,
    Step,
    StepFailed,
    ToolMissing,
    ToolTimeout,
)
from forma3d.domain.gridflock.planner import PlanOptions, plan_plates
from forma3d.domain.gridflock.profiles import PROFILES
from forma3d.gridflock.slicing import PrusaSlicer
from forma3d.gridflock.stl import (
    check_mesh,
    generate_plate_stl,
    generate_set_stl_upstream,
    scad_parameters,
    upstream_parameters,
)

A1 = PROFILES["bambu-a1"]
PLATE = plan_plates(100, 100, A1).plates[0]


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def _write_stl(path: Path, triangles: np.ndarray) -> None:
    with path.open("wb") as f:
        f.write(b"\0" * 80 + struct.pack("<I", len(triangles)))
        for tri in triangles:
            f.write(struct.pack("<12fH", 0, 0, 0, *tri.reshape(-1), 0))


def _box(sx: float, sy: float, sz: float) -> np.ndarray:
    v = np.array([[x, y, z] for x in (0, sx) for y in (0, sy) for z in (0, sz)], dtype=float)
    faces = [
        (0, 2, 3), (0, 3, 1), (4, 5, 7), (4, 7, 6), (0, 1, 5), (0, 5, 4),
        (2, 6, 7), (2, 7, 3), (0, 4, 6), (0, 6, 2), (1, 3, 7), (1, 7, 5),
    ]  # fmt: skip
    return np.array([[v[a], v[c], v[b]] for a, b, c in faces])  # outward normals


async def test_missing_openscad_fails_at_generating_stl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSCAD_BIN", str(tmp_path / "no-openscad"))
    with pytest.raises(ToolMissing) as info:
        await generate_plate_stl(PLATE, tmp_path / "p.stl")
    assert info.value.step is Step.GENERATING_STL
    assert str(info.value).startswith("GENERATING_STL: OpenSCAD")
    assert not (tmp_path / "p.stl").exists()


async def test_missing_slicer_fails_at_slicing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRUSA_SLICER_BIN", str(tmp_path / "no-prusa"))
    stl = tmp_path / "box.stl"
    _write_stl(stl, _box(10, 10, 10))
    with pytest.raises(ToolMissing) as info:
        await PrusaSlicer().slice(stl, A1, tmp_path / "out.gcode")
    assert info.value.step is Step.SLICING
    assert "PrusaSlicer" in str(info.value)


async def test_crashing_slicer_fails_at_slicing_with_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = _script(tmp_path, "prusa-slicer", 'echo "segfault in GCode.cpp" >&2; kill -SEGV $$')
    monkeypatch.setenv("PRUSA_SLICER_BIN", str(crash))
    stl = tmp_path / "box.stl"
    _write_stl(stl, _box(10, 10, 10))
    with pytest.raises(StepFailed) as info:
        await PrusaSlicer().slice(stl, A1, tmp_path / "out.gcode")
    assert info.value.step is Step.SLICING
    assert "signal" in info.value.reason or "exit status" in info.value.reason
    assert not (tmp_path / "out.gcode").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".slice-")]


async def test_hanging_openscad_is_killed_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSCAD_BIN", str(_script(tmp_path, "openscad", "sleep 30")))
    with pytest.raises(ToolTimeout) as info:
        await generate_plate_stl(PLATE, tmp_path / "p.stl", timeout_s=0.5)
    assert info.value.step is Step.GENERATING_STL
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".render-")]


def test_open_mesh_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "open.stl"
    _write_stl(path, _box(10, 10, 10)[:-1])
    with pytest.raises(MeshCheckFailed, match="not closed"):
        check_mesh(path, None)


def test_wrong_size_is_rejected_and_right_size_passes(tmp_path: Path) -> None:
    path = tmp_path / "box.stl"
    _write_stl(path, _box(20, 30, 5))
    report = check_mesh(path, (20.05, 30, 5))
    assert report.size_mm == (20, 30, 5) and abs(report.volume_mm3 - 3000) < 1e-3
    with pytest.raises(MeshCheckFailed, match="bounding box"):
        check_mesh(path, (20.2, 30, 5))


def test_inside_out_mesh_has_no_sane_volume(tmp_path: Path) -> None:
    path = tmp_path / "inverted.stl"
    _write_stl(path, _box(10, 10, 10)[:, ::-1])
    with pytest.raises(MeshCheckFailed, match="volume"):
        check_mesh(path, None)


def test_scad_parameters_cover_the_plate() -> None:
    plate = plan_plates(523, 387, A1, PlanOptions(magnets=True)).plate(1)
    params = scad_parameters(plate)
    assert params["magnets"] == "true" and params["floor_mm"] == "3"
    assert params["conn_n"].startswith("[") and params["conn_s"] == "[]"
    assert params["round_sw"] == "true" and params["round_ne"] == "false"


async def test_upstream_hook_passes_the_documented_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in checkout: its gridflock.scad draws a slab of `plate_size` from our mapping."""
    checkout = tmp_path / "GridFlock"
    checkout.mkdir()
    (checkout / "gridflock.scad").write_text(
        "bed_size = [1, 1]; plate_size = [1, 1]; magnets = false;\n"
        "assert(bed_size == [256, 256]); assert(magnets);\n"
        "cube([plate_size[0], plate_size[1], 5]);\n"
    )
    ps = plan_plates(300, 200, A1, PlanOptions(magnets=True))
    assert upstream_parameters(ps)["plate_size"] == "[300,200]"
    monkeypatch.delenv("GRIDFLOCK_DIR", raising=False)
    with pytest.raises(MeshCheckFailed, match="GRIDFLOCK_DIR"):
        await generate_set_stl_upstream(ps, tmp_path / "set.stl")
    monkeypatch.setenv("GRIDFLOCK_DIR", str(checkout))
    result = await generate_set_stl_upstream(ps, tmp_path / "set.stl")
    assert result.mesh.size_mm == (300, 200, 5)
