"""One plate's files as plain data, the function that makes them, and the in-process `Slicer`.

`make_plate` is what every slicer runs per plate: the Ray pool as a one-CPU task on some node,
`LocalSlicer` in this process (tests, one-machine runs). The plate's solid comes from the
tenant's engine: Manifold in process by default, or OpenSCAD. Tool failures never
raise: they come back as a `PlateResult` naming the step that broke, so the pipeline fails at
that step with the tool's own words.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from forma3d.domain.gridflock.errors import Step, StepFailed
from forma3d.domain.gridflock.planner import Plate
from forma3d.domain.gridflock.profiles import DEFAULT_SLICING, PrinterProfile, SliceSettings
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock.artifacts import PlateArtifacts
from forma3d.gridflock.cache import ArtifactCache

Kind = Literal["stl", "gcode"]


class SlicerUnavailable(RuntimeError):
    """The slicer itself went away (its actor restarted): not the job's fault; try later."""


@dataclass(frozen=True, slots=True)
class PlateResult:
    """One plate's files (paths in the shared cache) or the step that failed, as plain data."""

    number: int
    stl_path: str | None = None
    stl_key: str | None = None
    stl_generated: bool = False
    stl_seconds: float = 0.0
    gcode_path: str | None = None
    gcode_key: str | None = None
    sliced: bool = False
    slice_seconds: float = 0.0
    print_seconds: int | None = None
    filament_g: float | None = None
    slicer: str | None = None
    failed_step: str | None = None
    error: str | None = None
    stl_engine: str | None = None
    """Which geometry engine made the STL (`manifold` or `openscad`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def make_plate(kind: Kind, plate: Plate, profile: PrinterProfile | None,
                     cache_root: Path, engine: GridflockEngine = "manifold",
                     slicing: SliceSettings = DEFAULT_SLICING) -> PlateResult:
    """The STL (and for `gcode` the sliced file) of one plate, through the content-hash cache."""
    artifacts = PlateArtifacts(ArtifactCache(cache_root), engine=engine)
    step = Step.GENERATING_STL
    try:
        stl = await artifacts.stl(plate)
        result = PlateResult(plate.number, str(stl.path), stl.key, not stl.cached, stl.seconds,
                             stl_engine=stl.engine)
        if kind == "stl":
            return result
        assert profile is not None
        step = Step.SLICING
        gcode = await artifacts.gcode(plate, profile, slicing)
        return PlateResult(
            plate.number, result.stl_path, result.stl_key, result.stl_generated,
            result.stl_seconds, str(gcode.path), gcode.key, not gcode.cached, gcode.seconds,
            gcode.stats.print_seconds, gcode.stats.filament_g, gcode.slicer,
            stl_engine=stl.engine)
    except StepFailed as failure:
        return PlateResult(plate.number, failed_step=failure.step.value, error=failure.reason)
    except Exception as error:  # a bug or a broken disk: still a visible failure at this step
        return PlateResult(plate.number, failed_step=step.value,
                           error=f"{type(error).__name__}: {error}")


class LocalSlicer:
    """The handlers' `Slicer` without a cluster: the tools run in and under this process, at
    most `workers` plates at a time."""

    def __init__(self, cache_root: Path, workers: int | None = None) -> None:
        self.cache_root = cache_root
        self.slots = asyncio.Semaphore(workers or os.cpu_count() or 1)

    async def run(self, kind: Kind, plates: Sequence[Plate], profile: PrinterProfile | None,
                  engine: GridflockEngine = "manifold",
                  slicing: SliceSettings = DEFAULT_SLICING) -> list[PlateResult]:
        return list(await asyncio.gather(
            *(self._one(kind, p, profile, engine, slicing) for p in plates)))

    async def _one(self, kind: Kind, plate: Plate, profile: PrinterProfile | None,
                   engine: GridflockEngine, slicing: SliceSettings) -> PlateResult:
        async with self.slots:
            return await make_plate(kind, plate, profile, self.cache_root, engine, slicing)
