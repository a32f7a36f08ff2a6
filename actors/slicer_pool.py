"""The slicer pool: OpenSCAD and slicer runs as Ray tasks of one CPU each.

Each plate is one `num_cpus=1` task, so as many run at once as the cluster has CPUs, and work
that does not fit stays pending in Ray's scheduler, which is the demand the autoscaler reads to
add nodes. One named actor (`SlicerPool`, no CPU of its own) fronts the tasks: it bounds the
work in flight (callers wait for a slot: backpressure instead of an unbounded pile of tasks),
counts OpenSCAD and slicer runs, and holds the pool's configuration: the cache root, a directory
every node shares and that is passed to each task explicitly, and tool overrides for the
workers' environment (`OPENSCAD_BIN`, `PRUSA_SLICER_BIN`, `BAMBU_STUDIO_BIN`).

Tasks never raise for a tool failure: they return it with the step that broke, so the
pipeline fails at the named step with the tool's own words.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray

from actors.loops import Heartbeat, Loop, Loops
from actors.router import NAMESPACE
from forma3d.domain.gridflock.planner import Plate
from forma3d.domain.gridflock.profiles import DEFAULT_SLICING, PrinterProfile, SliceSettings
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock.plates import Kind, PlateResult, SlicerUnavailable, make_plate
from forma3d.platform import metrics

POOL_NAME = "forma3d-slicer-pool"
CACHE_ENV = "FORMA3D_GRIDFLOCK_CACHE"
TOOL_ENV_VARS = frozenset({"OPENSCAD_BIN", "PRUSA_SLICER_BIN", "BAMBU_STUDIO_BIN"})
DEFAULT_MAX_QUEUED = 64
PROGRESS_CHECK_SECONDS = 1.0
# Longer than one plate may take (OpenSCAD's 900 s and the slicer's 600 s timeouts): a pool
# busy this long without a plate ending is stuck.
PLATE_STALE_SECONDS = 1800.0


def default_cache_root() -> Path:
    """`$FORMA3D_GRIDFLOCK_CACHE`, else `$FORMA3D_DATA_DIR/gridflock-cache`, made absolute."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).resolve()
    return (Path(os.environ.get("FORMA3D_DATA_DIR", ".forma3d")) / "gridflock-cache").resolve()


@contextlib.contextmanager
def _tool_env(overrides: Mapping[str, str]) -> Iterator[None]:
    """Apply tool overrides for one task; a num_cpus=1 task has its worker process to itself."""
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@ray.remote(num_cpus=1, max_retries=2)
def plate_task(kind: Kind, plate: Plate, profile: PrinterProfile | None, cache_root: str,
               tool_env: dict[str, str], engine: GridflockEngine,
               slicing: SliceSettings = DEFAULT_SLICING) -> PlateResult:
    """One plate on one CPU; Ray retries it only if the worker process itself dies."""
    with _tool_env(tool_env):
        return asyncio.run(make_plate(kind, plate, profile, Path(cache_root), engine, slicing))


class SlicerPoolCore:
    """The pool's logic without the actor wrapper, so tests and benchmarks can drive it."""

    def __init__(self, cache_root: Path | str | None = None,
                 max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self.cache_root = Path(cache_root) if cache_root else default_cache_root()
        self.max_queued = max_queued
        self.slots = asyncio.Semaphore(max_queued)
        self.tool_env: dict[str, str] = {}
        self.stats: Counter[str] = Counter()
        self.waiting = 0
        self.running = 0
        self.finished = 0  # plate tasks that ended, however: the progress loop's measure

    def configure(self, *, cache_root: str | None = None,
                  tool_env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Change the cache root and/or replace the tool overrides (ops and fault tests)."""
        if tool_env is not None:
            unknown = set(tool_env) - TOOL_ENV_VARS
            if unknown:
                raise ValueError(f"not a tool variable: {sorted(unknown)}")
            self.tool_env = dict(tool_env)
        if cache_root is not None:
            self.cache_root = Path(cache_root)
        return self.status()

    async def run(self, kind: Kind, plates: Sequence[Plate],
                  profile: PrinterProfile | None = None,
                  engine: GridflockEngine = "manifold",
                  slicing: SliceSettings = DEFAULT_SLICING) -> list[PlateResult]:
        """Make every plate (one task each, at most `max_queued` in flight pool-wide).

        Largest plates start first (longest-processing-time order): with unequal plates on a
        few workers, no worker is left alone with a big plate at the end. Results keep the
        callers' order.
        """
        order = sorted(range(len(plates)),
                       key=lambda i: -plates[i].width_mm * plates[i].depth_mm)
        made = await asyncio.gather(*(self._one(kind, plates[i], profile, engine, slicing)
                                      for i in order))
        results: list[PlateResult | None] = [None] * len(plates)
        for index, result in zip(order, made, strict=True):
            results[index] = result
        return [r for r in results if r is not None]

    async def _one(self, kind: Kind, plate: Plate, profile: PrinterProfile | None,
                   engine: GridflockEngine = "manifold",
                   slicing: SliceSettings = DEFAULT_SLICING) -> PlateResult:
        metrics.observe("forma3d_slicer_queue_depth", self.waiting + self.running + 1)
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.perf_counter()
        try:
            ref = plate_task.remote(  # type: ignore[call-arg]  # Ray types six
                kind, plate, profile, str(self.cache_root), dict(self.tool_env), engine, slicing)
            result: PlateResult = await ref
        finally:
            self.running -= 1
            self.finished += 1
            self.slots.release()
        took = time.perf_counter() - started
        metrics.observe("forma3d_slicer_tool_seconds", took, kind=kind)
        self.stats["tasks"] += 1
        self.stats["task_seconds_ms"] += int(took * 1000)
        if result.failed_step:
            self.stats[f"failed.{result.failed_step}"] += 1
        self.stats["stl.miss" if result.stl_generated else "stl.hit"] += result.stl_key is not None
        if kind == "gcode" and result.gcode_key is not None:
            self.stats["gcode.miss" if result.sliced else "gcode.hit"] += 1
        return result

    def status(self) -> dict[str, Any]:
        return {"cache_root": str(self.cache_root), "tool_env": dict(self.tool_env),
                "max_queued": self.max_queued, "waiting": self.waiting,
                "running": self.running, "stats": dict(self.stats)}


    async def progress(self, heartbeat: Heartbeat) -> None:
        """Beat while the pool is idle or a plate ended since the last look: a pool with plates
        in flight and none ending for longer than a plate may take is stuck."""
        seen = self.finished
        while True:
            if (self.running == 0 and self.waiting == 0) or self.finished != seen:
                heartbeat.beat()
            seen = self.finished
            await asyncio.sleep(PROGRESS_CHECK_SECONDS)


@ray.remote(num_cpus=0)
class SlicerPool:
    """The named actor around SlicerPoolCore: one per cluster, found or created on first use.
    Its progress loop starts in the constructor, so a restart resumes it."""

    def __init__(self, cache_root: str | None = None,
                 max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        self.core = SlicerPoolCore(cache_root, max_queued)
        self.loops = Loops("slicer-pool", [
            Loop("progress", self.core.progress, stale_after=PLATE_STALE_SECONDS)])
        self.loops.ensure_started()

    async def run(self, kind: Kind, plates: list[Plate],
                  profile: PrinterProfile | None = None,
                  engine: GridflockEngine = "manifold",
                  slicing: SliceSettings = DEFAULT_SLICING) -> list[PlateResult]:
        return await self.core.run(kind, plates, profile, engine, slicing)

    async def configure(self, cache_root: str | None = None,
                        tool_env: dict[str, str] | None = None) -> dict[str, Any]:
        return self.core.configure(cache_root=cache_root, tool_env=tool_env)

    async def status(self) -> dict[str, Any]:
        self.loops.ensure_started()
        return {**self.core.status(), "pid": os.getpid(), "loops": self.loops.report()}


def get_pool(cache_root: Path | None = None) -> Any:
    """The cluster's pool actor (detached, restarted after a crash), created if missing."""
    return SlicerPool.options(  # type: ignore[attr-defined]
        name=POOL_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
        max_restarts=-1, max_task_retries=-1, max_concurrency=1000,
    ).remote(str(cache_root or default_cache_root()))


class RaySlicer:
    """The handlers' `Slicer` on the cluster's pool actor (found or created on first use); the
    actor restarting under a call is `SlicerUnavailable`, so handlers never see Ray's errors."""

    def __init__(self) -> None:
        self._pool: Any = None

    async def run(self, kind: Kind, plates: Sequence[Plate], profile: PrinterProfile | None,
                  engine: GridflockEngine = "manifold",
                  slicing: SliceSettings = DEFAULT_SLICING) -> list[PlateResult]:
        if self._pool is None:
            self._pool = get_pool()
        try:
            results: list[PlateResult] = await self._pool.run.remote(kind, list(plates), profile,
                                                                     engine, slicing)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as gone:
            raise SlicerUnavailable(f"slicer pool unavailable ({type(gone).__name__})") from gone
        return results
