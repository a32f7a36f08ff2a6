"""Fleet events for the event log: printer changes, queue operations, reconciliation
corrections and admin force-status, each with the values before and after.

They register in the one catalog (same envelope, validation and versioning as every other
event); they live here only because the fleet is their sole producer.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from forma3d.events.catalog import EventPayload, Id, _register


class FleetEvent(StrEnum):
    PRINTER_CHANGED = "printer.changed"
    QUEUE_CHANGED = "print-job.queue-changed"
    JOB_RECONCILED = "print-job.reconciled"
    FORCE_STATUS = "print-job.force-status"


class Change(EventPayload):
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)


@_register(FleetEvent.PRINTER_CHANGED, "0.0.1",  # type: ignore[arg-type]
           "A printer's state, readiness, name, tags or enablement changed.")
class PrinterChanged(Change):
    printer_id: Id
    source: str = "farm"


@_register(FleetEvent.QUEUE_CHANGED, "0.0.1",  # type: ignore[arg-type]
           "An operator changed the smart queue: cancel, pause, resume, reorder, clear.")
class QueueChanged(Change):
    action: str
    print_job_ids: list[str] = Field(default_factory=list)


@_register(FleetEvent.JOB_RECONCILED, "0.0.1",  # type: ignore[arg-type]
           "Reconciliation corrected a job from the farm's state or history.")
class JobReconciled(Change):
    print_job_id: Id
    reason: str


@_register(FleetEvent.FORCE_STATUS, "0.0.1",  # type: ignore[arg-type]
           "An admin forced a job's status (audited: who, why, before and after).")
class ForceStatus(Change):
    print_job_id: Id
    reason: str
    by: str
