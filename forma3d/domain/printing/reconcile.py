"""What the farm says happened to our jobs, from its queue and job history (pure).

Reconciliation is how a lost webhook never strands a job: every active job is looked up by its
queue item in SimplyPrint's job history, and a job in neither the queue nor the history for
longer than a grace period has vanished and is treated as failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from forma3d.domain.printing.states import PrintJobStatus


class FarmJob(Protocol):
    """A row of the farm's job history, as much of it as reconciliation reads."""

    @property
    def uid(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def job_status(self) -> PrintJobStatus | None:
        """The farm's status in our words (mapped at the integration edge)."""

    @property
    def queue_item(self) -> dict[str, Any] | None: ...

    @property
    def start_date(self) -> datetime | None: ...

    @property
    def end_date(self) -> datetime | None: ...

    @property
    def printer_id(self) -> int | None: ...


@dataclass(frozen=True)
class JobUpdate:
    print_job_id: str
    status: PrintJobStatus
    at: datetime
    queue_item_id: int | None = None
    farm_job_uid: str | None = None
    farm_printer_id: int | None = None
    error: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"print_job_id": self.print_job_id, "status": self.status.value,
                "at": self.at.isoformat(), "queue_item_id": self.queue_item_id,
                "farm_job_uid": self.farm_job_uid, "farm_printer_id": self.farm_printer_id,
                "error": self.error}


def _latest_by_queue_item(history: Iterable[FarmJob]) -> dict[int, FarmJob]:
    latest: dict[int, FarmJob] = {}
    for job in history:
        item = (job.queue_item or {}).get("id")
        if item is None:
            continue
        seen = latest.get(int(item))
        if seen is None or (job.start_date or datetime.min.replace(tzinfo=UTC)) >= (
                seen.start_date or datetime.min.replace(tzinfo=UTC)):
            latest[int(item)] = job
    return latest


def reconcile(active: Sequence[dict[str, Any]], open_items: set[int],
              history: Iterable[FarmJob], *, now: datetime,
              grace: timedelta) -> list[JobUpdate]:
    """Updates that bring our active jobs in line with the farm (only where they differ)."""
    latest = _latest_by_queue_item(history)
    updates = []
    for job in active:
        item = job["farm_queue_item_id"]
        if item is None:
            continue
        farm_job = latest.get(int(item))
        if farm_job is not None:
            status = farm_job.job_status
            if status and status != job["status"]:
                updates.append(JobUpdate(
                    str(job["id"]), status, farm_job.end_date or farm_job.start_date or now,
                    int(item), farm_job.uid, farm_job.printer_id,
                    f"farm reports {farm_job.status}"
                    if status in (PrintJobStatus.FAILED, PrintJobStatus.CANCELLED) else None))
        elif int(item) not in open_items and job["status"] == "QUEUED" and (
                job["queued_at"] is None or now - job["queued_at"] > grace):
            updates.append(JobUpdate(str(job["id"]), PrintJobStatus.FAILED, now, int(item),
                                     error="vanished from the farm's queue and history"))
    return updates
