"""Shared plumbing for benchmarks: a stack of real servers, Ray, percentiles and RSS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from forma3d.db.migrations import migrate
from forma3d.platform.embedded import Services, start_services


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def own_ray_rss_mb() -> tuple[float, dict[str, float]]:
    """RSS of the Ray processes this run started (the driver's descendants: GCS, raylet, agents,
    workers), so other Ray clusters on a shared machine do not count; and MB per process kind."""
    total = 0
    kinds: dict[str, float] = defaultdict(float)
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            cmdline = " ".join(proc.cmdline())
            if cmdline.startswith("ray::") or "/site-packages/ray/" in cmdline:
                rss = proc.memory_info().rss
                total += rss
                name = cmdline.split()[0].split("/")[-1].split(".")[0]
                kinds[name] = round(kinds[name] + rss / 2**20, 1)
    return round(total / 2**20, 1), dict(kinds)


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages: how much else wanted the cores."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform()}


@contextlib.contextmanager
def services(data_dir: Path = Path(".forma3d/bench")) -> Iterator[Services]:
    started = start_services(os.environ.get("DATABASE_URL") or None,
                             os.environ.get("REDIS_URL") or None, data_dir)
    try:
        asyncio.run(migrate(started.database_url))
        yield started
    finally:
        started.stop()


def _figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _finite(value: Any) -> Any:
    """NaN (a percentile of nothing) as null, so the JSON stays JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def repeated(run: Callable[[], dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Run a benchmark `repeat` times: the median of every numeric figure at the top level, its
    min and max, every run, and the load average before and after each, so that no single noisy
    run is quoted as the figure."""
    runs = []
    for _ in range(repeat):
        before = load_average()
        result = _finite(run())
        result["load_average"] = {"start": before, "end": load_average()}
        runs.append(result)
    figures = [k for k, v in runs[0].items() if _figure(v)]
    # Other values (counts by status, per-process RSS...) stand as they are when every run
    # agrees; otherwise the summary points at the runs rather than quote the first one.
    summary: dict[str, Any] = {
        k: v if all(r.get(k) == v for r in runs) else "differs per run: see runs"
        for k, v in runs[0].items()}
    spread: dict[str, list[float]] = {}
    for key in figures:
        values = [r[key] for r in runs if _figure(r.get(key))]
        summary[key] = round(statistics.median(values), 2) if values else None
        spread[key] = [min(values), max(values)] if values else []
    summary.update({
        "repeat": repeat, "min_max": spread,
        "load_average": {"start": runs[0]["load_average"]["start"],
                         "end": runs[-1]["load_average"]["end"]},
        "command": " ".join(["benchmarks/" + Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()})
    if repeat > 1:
        summary["runs"] = runs
    return summary


def show(result: dict[str, Any], as_json: bool) -> None:
    """JSON on one line, or one figure per line with its min-max over the repeats."""
    if as_json:
        print(json.dumps(result, default=str))
        return
    spread = result.get("min_max", {})
    for key, value in result.items():
        if key in ("runs", "min_max"):
            continue
        low_high = spread.get(key)
        extra = f"  (min {low_high[0]}, max {low_high[1]})" if low_high and \
            result.get("repeat", 1) > 1 else ""
        print(f"{key:>26}: {value}{extra}")
