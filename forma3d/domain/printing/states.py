"""Print-job lifecycle as a transition table.

Status comes from SimplyPrint webhooks and from polling/reconciliation when webhooks are missed,
so forward skips are legal (QUEUED -> PRINTING or -> COMPLETED when the intermediate states were
never seen). ASSIGNED -> QUEUED covers a printer dropping a job before it starts. A requeue is the
operator moving FAILED or CANCELLED back to QUEUED; COMPLETED is terminal (a reprint is a new job).
"""

from __future__ import annotations

from enum import StrEnum

from forma3d.domain.statemachine import StateMachine


class PrintJobStatus(StrEnum):
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    ASSIGNED = "ASSIGNED"
    PRINTING = "PRINTING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class JobPurpose(StrEnum):
    ORDER = "ORDER"
    STOCK = "STOCK"


_J = PrintJobStatus
PRINT_JOB_MACHINE: StateMachine[PrintJobStatus] = StateMachine(
    "print job",
    PrintJobStatus,
    {
        _J.PENDING: {_J.QUEUED, _J.FAILED, _J.CANCELLED},
        _J.QUEUED: {_J.ASSIGNED, _J.PRINTING, _J.COMPLETED, _J.FAILED, _J.CANCELLED},
        _J.ASSIGNED: {_J.QUEUED, _J.PRINTING, _J.COMPLETED, _J.FAILED, _J.CANCELLED},
        _J.PRINTING: {_J.COMPLETED, _J.FAILED, _J.CANCELLED},
        _J.COMPLETED: set(),
        _J.FAILED: {_J.QUEUED},
        _J.CANCELLED: {_J.QUEUED},
    },
    initial=_J.PENDING,
)

ACTIVE_JOB_STATUSES = frozenset({_J.PENDING, _J.QUEUED, _J.ASSIGNED, _J.PRINTING})
"""Jobs still on their way to a printer or on one: what an order cancellation must cancel."""
