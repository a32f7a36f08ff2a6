"""Shared plumbing for benchmarks: a stack of real servers, Ray, percentiles and RSS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import statistics
from collections.abc import Iterator
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


def ray_rss_mb() -> float:
    """Resident memory of every Ray process on this machine (workers, raylet, GCS, agents)."""
    total = 0
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.info["pid"] == me:
                continue
            if cmdline.startswith("ray::") or "/site-packages/ray/" in cmdline:
                total += proc.info["memory_info"].rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, TypeError):
            continue
    return total / 2**20


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
