"""GridFlock: planning/preview speed, STL and slicer time per plate, the slicer pool's
speed-up from one to two CPUs, the cost of a cache hit, the two geometry engines (Manifold in
process against OpenSCAD, same plates, same run) and the preview of the largest allowed drawer.
Real OpenSCAD and PrusaSlicer.

    .venv/bin/python benchmarks/gridflock.py [--width 523 --depth 387 --profile bambu-a1]
                                             [--rounds 2] [--repeat 1] [--json]
    .venv/bin/python benchmarks/gridflock.py --engines-only [--json]   # no Ray, a minute

On a local Ray cluster of two CPUs the pool makes every unique plate (STL and gcode) into an
empty cache, once bounded to one worker and once to two, so both runs use the real tools; the
order alternates per round (one then two in even rounds, two then one in odd ones, as
`worker_order` reports) so a noisy neighbour or a warming cache favours neither. Per-plate tool
times come from the one-worker runs, where no two tools share the machine. `--repeat N` runs it
all N times (a fresh Ray each time) and reports the median, min and max of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.slicer_pool import SlicerPoolCore
from benchmarks._common import machine, repeated, show
from forma3d.domain.gridflock import PROFILES, PlanOptions, PlateSet, get_profile, plan_plates
from forma3d.domain.gridflock.planner import _plan
from forma3d.domain.gridflock.profiles import PrinterProfile
from forma3d.domain.tenants import GRIDFLOCK_CEILING_MM
from forma3d.gridflock.plates import PlateResult, make_plate
from forma3d.gridflock.preview import preview_payload
from forma3d.gridflock.stl import generate_plate


def preview_ms(width: float, depth: float, profile: PrinterProfile, repeat: int = 200) -> float:
    """Median of plan + JSON + SVG, what `POST /gridflock/preview` computes per keystroke."""
    times = []
    for i in range(repeat):
        started = time.perf_counter()
        plate_set = plan_plates(width + (i % 7) * 0.5, depth, profile, PlanOptions(magnets=True))
        json.dumps(preview_payload(plate_set))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def make_all(plate_set: PlateSet, cache: Path, workers: int
                   ) -> tuple[float, list[PlateResult]]:
    """Wall seconds for `workers` slicer workers to make every unique plate into an empty cache."""
    pool = SlicerPoolCore(cache, max_queued=workers)
    started = time.perf_counter()
    results = await pool.run("gcode", plate_set.plates, plate_set.profile)
    wall = time.perf_counter() - started
    failed = [r for r in results if r.failed_step]
    if failed:
        raise SystemExit(f"plate failed: {failed[0]}")
    return wall, results


async def run(width: float, depth: float, profile_id: str, rounds: int) -> dict[str, Any]:
    """One Ray cluster of two CPUs; one worker (a pool bounded to one task) against two,
    alternating per round so a noisy neighbour hits both alike."""
    profile = get_profile(profile_id)
    plate_set = plan_plates(width, depth, profile, PlanOptions(magnets=True))
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20,
             log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="gridflock-bench-") as tmp:
            root = Path(tmp)
            tiny = plan_plates(100, 100, profile, PlanOptions()).plates[0]
            await make_plate("stl", tiny, None, root / "warm")
            await SlicerPoolCore(root / "warm").run("stl", [tiny, tiny])  # warm both workers
            ones: list[tuple[float, list[PlateResult]]] = []
            twos: list[tuple[float, list[PlateResult]]] = []
            order: list[list[int]] = []
            for r in range(rounds):
                first, second = (1, 2) if r % 2 == 0 else (2, 1)
                order.append([first, second])
                for workers in (first, second):
                    made = await make_all(plate_set, root / f"{workers}w-{r}", workers)
                    (ones if workers == 1 else twos).append(made)
            pool = SlicerPoolCore(root / "2w-0")
            hits = []
            for _ in range(20):
                t = time.perf_counter()
                [again] = await pool.run("gcode", plate_set.plates[:1], profile)
                hits.append((time.perf_counter() - t) * 1000)
                assert not again.sliced and not again.stl_generated
            inproc = []
            for _ in range(20):
                t = time.perf_counter()
                hit = await make_plate("gcode", plate_set.plates[0], profile, root / "2w-0")
                inproc.append((time.perf_counter() - t) * 1000)
                assert not hit.sliced
    finally:
        ray.shutdown()
    unique = len(plate_set.plates)
    one_results = [x for _, rs in ones for x in rs]
    speedups = [o[0] / t[0] for o, t in zip(ones, twos, strict=True)]
    return {
        "drawer_mm": [width, depth], "printer_profile": profile.id, "magnets": True,
        "plates": plate_set.total_plates, "unique_plates": unique, "rounds": rounds,
        "worker_order": order,
        "stl_s_per_plate": round(statistics.fmean(r.stl_seconds for r in one_results), 2),
        "slice_s_per_plate": round(statistics.fmean(r.slice_seconds for r in one_results), 2),
        "pool_wall_s_1_worker": [round(w, 1) for w, _ in ones],
        "pool_wall_s_2_workers": [round(w, 1) for w, _ in twos],
        "pool_speedup_2_vs_1": round(statistics.median(speedups), 2),
        "pool_speedup_per_round": [round(x, 2) for x in speedups],
        # Tool seconds summed over plates: about equal for one and two workers when each worker
        # really had a core; about double with two when something else took the cores.
        "tool_s_sum_1_worker": [round(sum(r.stl_seconds + r.slice_seconds for r in rs), 1)
                                for _, rs in ones],
        "tool_s_sum_2_workers": [round(sum(r.stl_seconds + r.slice_seconds for r in rs), 1)
                                 for _, rs in twos],
        "cache_hit_ms": round(statistics.median(hits), 1),
        "cache_hit_in_process_ms": round(statistics.median(inproc), 1),
        "preview_ms": round(preview_ms(width, depth, profile), 2),
        "filament_g_total": round(sum((r.filament_g or 0) * p.count for r, p in
                                      zip(twos[0][1], plate_set.plates, strict=True)), 1),
    }


async def engines(width: float, depth: float, profile_id: str, repeat: int = 5
                  ) -> dict[str, Any]:
    """Seconds per plate of each geometry engine on the same unique plates, one at a time.

    Manifold: the median of `repeat` builds per plate (it is milliseconds, so one build is
    noise); OpenSCAD: one render per plate. Both include writing and checking the STL."""
    plate_set = plan_plates(width, depth, get_profile(profile_id), PlanOptions(magnets=True))
    fast: list[float] = []
    slow: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gridflock-engines-") as tmp:
        root = Path(tmp)
        await generate_plate(plate_set.plates[0], root / "warm.stl", "manifold")
        for p in plate_set.plates:
            runs = []
            for i in range(repeat):
                started = time.perf_counter()
                await generate_plate(p, root / f"m{p.number}-{i}.stl", "manifold")
                runs.append(time.perf_counter() - started)
            fast.append(statistics.median(runs))
            started = time.perf_counter()
            await generate_plate(p, root / f"o{p.number}.stl", "openscad")
            slow.append(time.perf_counter() - started)
    manifold_s, openscad_s = statistics.fmean(fast), statistics.fmean(slow)
    return {
        "engine_plates": len(plate_set.plates),
        "stl_s_per_plate_manifold": round(manifold_s, 4),
        "stl_s_per_plate_openscad": round(openscad_s, 2),
        "engine_speedup": round(openscad_s / manifold_s, 1),
        "engine_speedup_per_plate": [round(o / m, 1) for o, m in zip(slow, fast, strict=True)],
    }


def _preview_uncached(width: float, depth: float, profile: PrinterProfile) -> None:
    _plan.cache_clear()
    json.dumps(preview_payload(plan_plates(width, depth, profile, PlanOptions(magnets=True))))


def preview_largest(repeat: int = 5) -> dict[str, Any]:
    """The largest drawer the platform allows (its ceiling on both sides, and the worst row
    search found below it) on every printer: plan + JSON + SVG, uncached, as the API runs it.
    Peak memory is Python's allocations during the call (tracemalloc), the process's growth."""
    worst_ms, worst_mb, worst_case = 0.0, 0.0, ""
    ceiling = GRIDFLOCK_CEILING_MM
    for profile in PROFILES.values():
        for width, depth in ((ceiling, ceiling), (ceiling, 986.0)):
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                _preview_uncached(width, depth, profile)
                times.append((time.perf_counter() - started) * 1000)
            tracemalloc.start()  # a separate run: tracing slows Python several times over
            _preview_uncached(width, depth, profile)
            worst_mb = max(worst_mb, tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            if statistics.median(times) > worst_ms:
                worst_ms = statistics.median(times)
                worst_case = f"{width:g}x{depth:g} {profile.id}"
    return {"preview_largest_ms": round(worst_ms, 1), "preview_largest_case": worst_case,
            "preview_largest_peak_mb": round(worst_mb, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=float, default=523)
    parser.add_argument("--depth", type=float, default=387)
    parser.add_argument("--profile", default="bambu-a1")
    parser.add_argument("--rounds", type=int, default=2, help="1-vs-2 worker pairs to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs; figures are their median")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--engines-only", action="store_true",
                        help="only the geometry engines and the largest preview (no Ray)")
    args = parser.parse_args()
    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat must be at least 1")

    def once() -> dict[str, Any]:
        result: dict[str, Any] = {}
        if not args.engines_only:
            result = asyncio.run(run(args.width, args.depth, args.profile, args.rounds))
        result.update(asyncio.run(engines(args.width, args.depth, args.profile)))
        result.update(preview_largest())
        result.setdefault("machine", machine())
        return result

    show(repeated(once, args.repeat), args.json)


if __name__ == "__main__":
    main()
