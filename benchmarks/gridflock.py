"""GridFlock: planning/preview speed, OpenSCAD and slicer time per plate, the slicer pool's
speed-up from one to two CPUs, and the cost of a cache hit. Real OpenSCAD and PrusaSlicer.

    .venv/bin/python benchmarks/gridflock.py [--width 523 --depth 387 --profile bambu-a1] [--json]

The pool runs twice on a fresh local Ray cluster, first with one CPU and then with two, each time
into an empty cache, so both runs make every unique plate (STL and gcode) for real. Per-plate
tool times come from the one-CPU run, where no two tools share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.slicer_pool import PlateResult, SlicerPoolCore, make_plate
from benchmarks._common import machine
from forma3d.gridflock import PlanOptions, PlateSet, get_profile, plan_plates
from forma3d.gridflock.preview import preview_payload
from forma3d.gridflock.profiles import PrinterProfile


def preview_ms(width: float, depth: float, profile: PrinterProfile, repeat: int = 200) -> float:
    """Median of plan + JSON + SVG, what `POST /gridflock/preview` computes per keystroke."""
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        plate_set = plan_plates(width + (i % 7) * 0.5, depth, profile, PlanOptions(magnets=True))
        json.dumps(preview_payload(plate_set))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def pool_run(plate_set: PlateSet, cache: Path, warm: Path, cpus: int
                   ) -> tuple[float, list[PlateResult], float]:
    """(wall seconds to make every unique plate, results, median cache-hit ms through the pool)."""
    ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=200 * 2**20,
             log_to_driver=False)
    try:
        pool = SlicerPoolCore(cache)
        warm_pool = SlicerPoolCore(warm)
        tiny = plan_plates(100, 100, plate_set.profile, PlanOptions()).plates[0]
        # Warm the workers (imports, tool versions) on an STL that is already cached.
        await warm_pool.run("stl", [tiny] * cpus)
        started = time.perf_counter()
        results = await pool.run("gcode", plate_set.plates, plate_set.profile)
        wall = time.perf_counter() - started
        failed = [r for r in results if r.failed_step]
        if failed:
            raise SystemExit(f"plate failed: {failed[0]}")
        hits = []
        for _ in range(20):
            t = time.perf_counter()
            again = await pool.run("gcode", plate_set.plates[:1], plate_set.profile)
            hits.append((time.perf_counter() - t) * 1000)
            assert not again[0].sliced and not again[0].stl_generated
        return wall, results, statistics.median(hits)
    finally:
        ray.shutdown()


async def run(width: float, depth: float, profile_id: str) -> dict[str, Any]:
    profile = get_profile(profile_id)
    plate_set = plan_plates(width, depth, profile, PlanOptions(magnets=True))
    with tempfile.TemporaryDirectory(prefix="gridflock-bench-") as tmp:
        root = Path(tmp)
        tiny = plan_plates(100, 100, profile, PlanOptions()).plates[0]
        await make_plate("stl", tiny, None, root / "warm")
        one_wall, one, _ = await pool_run(plate_set, root / "one", root / "warm", 1)
        two_wall, two, hit_ms = await pool_run(plate_set, root / "two", root / "warm", 2)
        inproc = []
        for _ in range(20):
            t = time.perf_counter()
            r = await make_plate("gcode", plate_set.plates[0], profile, root / "two")
            inproc.append((time.perf_counter() - t) * 1000)
            assert not r.sliced
    unique = len(plate_set.plates)
    return {
        "drawer_mm": [width, depth], "printer_profile": profile.id, "magnets": True,
        "plates": plate_set.total_plates, "unique_plates": unique,
        "stl_s_per_plate": round(sum(r.stl_seconds for r in one) / unique, 2),
        "slice_s_per_plate": round(sum(r.slice_seconds for r in one) / unique, 2),
        "pool_wall_s_1_cpu": round(one_wall, 1), "pool_wall_s_2_cpus": round(two_wall, 1),
        "pool_speedup_2_vs_1": round(one_wall / two_wall, 2),
        # Tool seconds summed over plates: about equal in both runs when the two workers really
        # had a CPU each; about double in the 2-CPU run when something else took the cores.
        "tool_s_sum_1_cpu": round(sum(r.stl_seconds + r.slice_seconds for r in one), 1),
        "tool_s_sum_2_cpus": round(sum(r.stl_seconds + r.slice_seconds for r in two), 1),
        "load_average_1m": round(os.getloadavg()[0], 1),
        "cache_hit_ms": round(hit_ms, 1),
        "cache_hit_in_process_ms": round(statistics.median(inproc), 1),
        "preview_ms": round(preview_ms(width, depth, profile), 2),
        "filament_g_total": round(sum(r.filament_g or 0 for r in two), 1),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=float, default=523)
    parser.add_argument("--depth", type=float, default=387)
    parser.add_argument("--profile", default="bambu-a1")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.width, args.depth, args.profile))
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
