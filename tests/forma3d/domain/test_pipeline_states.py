from __future__ import annotations

import pytest

from forma3d.domain.gridflock.states import (
    GRIDFLOCK_JOB_MACHINE,
    GridflockJobStatus,
    GridflockStep,
    failed_step,
    next_step,
)
from forma3d.domain.statemachine import IllegalTransition

G = GridflockJobStatus


def test_happy_path_walks_every_step_in_order() -> None:
    status = G.PENDING
    seen = [status]
    while status != G.COMPLETED:
        status = GRIDFLOCK_JOB_MACHINE.check(status, next_step(status))
        seen.append(status)
    assert seen == [G.PENDING, G.GENERATING_STL, G.SLICING, G.UPLOADING, G.MAPPING, G.COMPLETED]


def test_existing_mapping_short_cuts_to_completed() -> None:
    assert GRIDFLOCK_JOB_MACHINE.can(G.PENDING, G.COMPLETED)


def test_steps_cannot_be_skipped() -> None:
    with pytest.raises(IllegalTransition):
        GRIDFLOCK_JOB_MACHINE.check(G.GENERATING_STL, G.UPLOADING)


@pytest.mark.parametrize("running", [G.GENERATING_STL, G.SLICING, G.UPLOADING, G.MAPPING])
def test_every_running_step_can_fail_and_names_its_step(running: GridflockJobStatus) -> None:
    assert GRIDFLOCK_JOB_MACHINE.can(running, G.FAILED)
    assert failed_step(running) == GridflockStep(running.value)


def test_failed_retries_from_pending_and_completed_is_terminal() -> None:
    assert GRIDFLOCK_JOB_MACHINE.allowed_from(G.FAILED) == {G.PENDING}
    assert GRIDFLOCK_JOB_MACHINE.terminal == {G.COMPLETED}


def test_non_running_states_have_no_failed_step_or_next_step() -> None:
    with pytest.raises(ValueError, match="not a running step"):
        failed_step(G.PENDING)
    with pytest.raises(ValueError, match="no next step"):
        next_step(G.COMPLETED)
    with pytest.raises(ValueError, match="no next step"):
        next_step(G.FAILED)
