from __future__ import annotations

import itertools

import pytest

from forma3d.domain.printing.states import ACTIVE_JOB_STATUSES, PRINT_JOB_MACHINE, PrintJobStatus
from forma3d.domain.statemachine import IllegalTransition

J = PrintJobStatus


def test_normal_lifecycle_is_legal() -> None:
    path = [J.PENDING, J.QUEUED, J.ASSIGNED, J.PRINTING, J.COMPLETED]
    for source, target in itertools.pairwise(path):
        PRINT_JOB_MACHINE.check(source, target)


@pytest.mark.parametrize("dead", [J.FAILED, J.CANCELLED])
def test_failed_and_cancelled_jobs_can_only_be_requeued(dead: PrintJobStatus) -> None:
    assert PRINT_JOB_MACHINE.allowed_from(dead) == {J.QUEUED}


def test_completed_is_the_only_terminal_state() -> None:
    assert PRINT_JOB_MACHINE.terminal == {J.COMPLETED}
    with pytest.raises(
        IllegalTransition, match="print job: illegal transition COMPLETED -> QUEUED"
    ):
        PRINT_JOB_MACHINE.check(J.COMPLETED, J.QUEUED)


def test_missed_webhooks_allow_forward_skips_but_not_backwards() -> None:
    assert PRINT_JOB_MACHINE.can(J.QUEUED, J.COMPLETED)
    assert PRINT_JOB_MACHINE.can(J.ASSIGNED, J.QUEUED)
    assert not PRINT_JOB_MACHINE.can(J.PRINTING, J.QUEUED)
    assert not PRINT_JOB_MACHINE.can(J.PENDING, J.PRINTING)


def test_every_active_job_can_be_cancelled() -> None:
    for status in ACTIVE_JOB_STATUSES:
        assert PRINT_JOB_MACHINE.can(status, J.CANCELLED)
    assert J.COMPLETED not in ACTIVE_JOB_STATUSES
