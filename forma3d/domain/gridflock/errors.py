"""Typed GridFlock errors, so the pipeline can fail a job at the step that broke."""

from __future__ import annotations

from enum import StrEnum


class Step(StrEnum):
    """Pipeline steps that run external tools; names match the GridFlock job states."""

    GENERATING_STL = "GENERATING_STL"
    SLICING = "SLICING"


class GridflockError(Exception):
    """Base of every GridFlock error."""


class InvalidGridRequest(GridflockError, ValueError):
    """A line item's properties or SKU cannot become a plan; `field` names what to fix."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class PlanError(GridflockError, ValueError):
    """The drawer cannot be split for this printer (e.g. a bed smaller than two cells)."""


class StepFailed(GridflockError):
    """An external step (OpenSCAD, numpy-stl check, slicer) failed; the job fails at `step`."""

    def __init__(self, step: Step, reason: str) -> None:
        super().__init__(f"{step.value}: {reason}")
        self.step = step
        self.reason = reason


class ToolMissing(StepFailed):
    """The binary for a step is not installed or not executable."""

    def __init__(self, step: Step, tool: str, hint: str = "") -> None:
        reason = f"{tool} not found" + (f" ({hint})" if hint else "")
        super().__init__(step, reason)
        self.tool = tool


class ToolTimeout(StepFailed):
    """The tool ran longer than its timeout and was killed."""


class MeshCheckFailed(StepFailed):
    """A generated STL is not closed, has the wrong size, or an impossible volume."""
