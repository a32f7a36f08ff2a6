"""The slicer pool on the session's Ray cluster: tool failures come back with their step, the
queue is bounded (callers wait instead of piling up tasks), results are cached by content hash."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from actors.runtime import Runtime
from actors.slicer_pool import SlicerPoolCore
from forma3d.domain.gridflock import PlanOptions, get_profile, plan_plates

pytestmark = pytest.mark.ray
PROFILE = get_profile("bambu-a1")
TINY = plan_plates(100, 100, PROFILE, PlanOptions()).plates[0]


def slow_openscad(directory: Path, seconds: float) -> Path:
    """Answers --version like OpenSCAD, then takes `seconds` and fails: occupancy, no output."""
    script = directory / "openscad-slow"
    script.write_text('#!/bin/sh\ncase "$*" in *--version*) echo "OpenSCAD version 2021.01" >&2;'
                      f' exit 0;; esac\nsleep {seconds}\necho "gave up" >&2\nexit 3\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_a_missing_tool_comes_back_as_a_failure_at_its_step(
        ray_runtime: Runtime, tmp_path: Path) -> None:
    pool = SlicerPoolCore(tmp_path)
    pool.configure(tool_env={"OPENSCAD_BIN": "/nonexistent/openscad"})
    [result] = await pool.run("gcode", [TINY], PROFILE, "openscad")
    assert result.failed_step == "GENERATING_STL"
    assert result.error is not None and "not found" in result.error
    assert result.gcode_path is None and pool.stats["failed.GENERATING_STL"] == 1


def test_only_tool_variables_can_be_overridden(tmp_path: Path) -> None:
    pool = SlicerPoolCore(tmp_path)
    with pytest.raises(ValueError, match="PATH"):
        pool.configure(tool_env={"PATH": "/tmp"})
    assert pool.configure(cache_root=str(tmp_path / "x"))["cache_root"] == str(tmp_path / "x")


async def test_the_queue_is_bounded_and_callers_wait_for_a_slot(
        ray_runtime: Runtime, tmp_path: Path) -> None:
    pool = SlicerPoolCore(tmp_path, max_queued=1)
    pool.configure(tool_env={"OPENSCAD_BIN": str(slow_openscad(tmp_path, 0.5))})
    plates = (*plan_plates(300, 200, PROFILE, PlanOptions()).plates, TINY)
    seen_running, seen_waiting = set(), set()
    work = asyncio.create_task(pool.run("stl", plates, None, "openscad"))
    deadline = asyncio.get_running_loop().time() + 120
    while not work.done():  # sampling the pool's counters until the work ends (bounded)
        assert asyncio.get_running_loop().time() < deadline, "the pool never finished"
        seen_running.add(pool.running)
        seen_waiting.add(pool.waiting)
        await asyncio.sleep(0.02)
    results = work.result()
    assert [r.failed_step for r in results] == ["GENERATING_STL"] * len(plates)
    assert max(seen_running) == 1  # never more in flight than the bound
    assert max(seen_waiting) == len(plates) - 1  # the rest waited their turn
    assert pool.stats["tasks"] == len(plates)


async def test_a_plate_is_generated_once_then_served_from_the_cache(
        ray_runtime: Runtime, tmp_path: Path) -> None:
    pool = SlicerPoolCore(tmp_path)
    first, second = await pool.run("stl", [TINY, TINY])
    assert first.failed_step is None and second.failed_step is None
    assert first.stl_path == second.stl_path
    assert await asyncio.to_thread(Path(str(first.stl_path)).is_file)
    assert sum(r.stl_generated for r in (first, second)) == 1  # one OpenSCAD run (single flight)
    [again] = await SlicerPoolCore(tmp_path).run("stl", [TINY])
    assert not again.stl_generated and again.stl_key == first.stl_key
