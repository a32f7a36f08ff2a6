"""The real tools: the manifold engine builds a small plate, numpy-stl checks it, PrusaSlicer
slices it. One build and one slice in total; the rest are cache hits. (OpenSCAD, the reference,
is compared with it in test_gridflock_engines.py and its faults are in test_gridflock_tools.py.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from forma3d.domain.gridflock.planner import PlanOptions, plan_plates
from forma3d.domain.gridflock.profiles import PROFILES, PrinterProfile
from forma3d.gridflock.artifacts import PlateArtifacts
from forma3d.gridflock.cache import ArtifactCache
from forma3d.gridflock.slicing import PrusaSlicer
from forma3d.gridflock.stl import check_mesh

# A small bed forces a split, so the plate has puzzle connectors as well as magnets and padding.
SMALL_BED = PrinterProfile("test-small", "SMALL", "Small test bed", 130, 130, "bambu_a1")


async def test_generate_check_and_slice_a_real_plate_once(tmp_path: Path) -> None:
    ps = plan_plates(140, 100, SMALL_BED, PlanOptions(magnets=True))
    assert ps.columns == 2
    plate = min(ps.plates, key=lambda p: p.cells_x * p.cells_y)
    assert plate.connectors.west.kind == "female" or plate.connectors.east.kind == "male"

    cache = ArtifactCache(tmp_path / "cache")
    artifacts = PlateArtifacts(cache, PrusaSlicer())
    # Concurrent requests for the same plate: one build and one slice (single flight).
    results = await asyncio.gather(*(artifacts.gcode(plate, SMALL_BED) for _ in range(3)))
    assert cache.stats["stl.miss"] == 1 and cache.stats["gcode.miss"] == 1
    gcode = results[0]
    assert all(r.path == gcode.path for r in results)
    assert gcode.stats.print_seconds > 0 and gcode.stats.filament_g > 0
    assert gcode.slicer == "prusaslicer" and gcode.slicer_version.startswith("2.")

    stl = await artifacts.stl(plate)
    assert stl.cached
    report = await asyncio.to_thread(check_mesh, stl.path, plate.extent_mm)
    assert report == stl.mesh and report.triangles > 100

    # Another process (new cache object, same directory) finds both files without any tool run.
    again = PlateArtifacts(ArtifactCache(tmp_path / "cache"), PrusaSlicer())
    hit = await again.gcode(plate, SMALL_BED)
    assert hit.cached and hit.stats == gcode.stats and hit.path == gcode.path
    assert again.cache.stats["stl.miss"] == 0 and again.cache.stats["gcode.miss"] == 0


def test_profiles_exist_for_every_printer() -> None:
    slicer = PrusaSlicer()
    for profile in PROFILES.values():
        assert slicer.supports(profile), profile.id
        assert len(slicer.ini_files(profile)) == 3
