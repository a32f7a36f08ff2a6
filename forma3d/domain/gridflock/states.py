"""GridFlock job lifecycle (STL -> slice -> upload -> mapping) as a transition table.

Kept here rather than in forma3d/gridflock/ so the pure domain core owns every state machine.
The pipeline moves one step at a time; PENDING -> COMPLETED is the shortcut when a mapping for
the SKU already exists. Any running step can fail, and the failure records which step
(`GridflockStep`) so an operator knows what to retry; FAILED -> PENDING is that retry.
"""

from __future__ import annotations

from enum import StrEnum

from forma3d.domain.statemachine import StateMachine


class GridflockJobStatus(StrEnum):
    PENDING = "PENDING"
    GENERATING_STL = "GENERATING_STL"
    SLICING = "SLICING"
    UPLOADING = "UPLOADING"
    MAPPING = "MAPPING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class GridflockStep(StrEnum):
    """The pipeline step where a failure happened (the event's `failed_step`)."""

    GENERATING_STL = "GENERATING_STL"
    SLICING = "SLICING"
    UPLOADING = "UPLOADING"
    MAPPING = "MAPPING"


_G = GridflockJobStatus
GRIDFLOCK_JOB_MACHINE: StateMachine[GridflockJobStatus] = StateMachine(
    "gridflock job",
    GridflockJobStatus,
    {
        _G.PENDING: {_G.GENERATING_STL, _G.COMPLETED, _G.FAILED},
        _G.GENERATING_STL: {_G.SLICING, _G.FAILED},
        _G.SLICING: {_G.UPLOADING, _G.FAILED},
        _G.UPLOADING: {_G.MAPPING, _G.FAILED},
        _G.MAPPING: {_G.COMPLETED, _G.FAILED},
        _G.COMPLETED: set(),
        _G.FAILED: {_G.PENDING},
    },
    initial=_G.PENDING,
)


def failed_step(status: GridflockJobStatus) -> GridflockStep:
    """The step a job was running when it failed; only running states have one."""
    try:
        return GridflockStep(status.value)
    except ValueError:
        raise ValueError(f"gridflock job: {status.value} is not a running step") from None


def next_step(status: GridflockJobStatus) -> GridflockJobStatus:
    """The state after `status` on the happy path, so workers do not hard-code the order."""
    order = [_G.PENDING, _G.GENERATING_STL, _G.SLICING, _G.UPLOADING, _G.MAPPING, _G.COMPLETED]
    if status not in order[:-1]:
        raise ValueError(f"gridflock job: no next step after {status.value}")
    return order[order.index(status) + 1]
