"""Print-job specs (what to print, before a job row exists), their natural idempotency keys,
and the status summary of a set of jobs.

The key is what makes job creation idempotent under at-least-once delivery: creating the jobs of
an order twice must yield the same keys, so a unique index turns the second attempt into a no-op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from urllib.parse import quote

from forma3d.domain.printing.states import ACTIVE_JOB_STATUSES, JobPurpose, PrintJobStatus


def _key(*components: object) -> str:
    """Join components with ':' after percent-encoding each, so no two tuples share a key."""
    parts = [str(c) for c in components]
    if any(not p for p in parts):
        raise ValueError(f"job key: empty component in {parts!r}")
    return ":".join(quote(p, safe="") for p in parts)


def order_job_key(order_id: str, line_item_id: str, part_id: str, copy_number: int) -> str:
    """order x line item x part x copy: one print job of an order."""
    if copy_number < 1:
        raise ValueError(f"job key: copy number {copy_number} < 1")
    return _key("order", order_id, line_item_id, part_id, copy_number)


def stock_job_key(batch_id: str, part_id: str, copy_number: int) -> str:
    """stock batch x part x copy: one print job that builds stock."""
    if copy_number < 1:
        raise ValueError(f"job key: copy number {copy_number} < 1")
    return _key("stock", batch_id, part_id, copy_number)


def is_stock_job_key(key: str) -> bool:
    """Whether a job key (or a text starting with one, like a farm queue note) names a stock
    job."""
    return key.startswith("stock:")


@dataclass(frozen=True, slots=True)
class QueueMove:
    """Move farm queue item `item_id` from 0-based position `start` to `end`."""

    item_id: int
    start: int
    end: int


def moves_ahead_of_stock(queue: Sequence[int], stock: Collection[int],
                         ahead: Sequence[int]) -> list[QueueMove]:
    """The moves, made one after the other, that put every item of `ahead` still in `queue`
    (item ids in queue order) before the first of the `stock` items, each just behind the one
    moved before it: the moved items keep their own order, the stock items keep theirs behind
    them, and an item already before every stock item stays where it is."""
    order = list(queue)
    moves: list[QueueMove] = []
    for item in ahead:
        if item not in order:
            continue  # started or withdrawn since it was placed
        here = order.index(item)
        first_stock = next((n for n, other in enumerate(order) if other in stock), None)
        if first_stock is None or first_stock > here:
            continue
        order.insert(first_stock, order.pop(here))
        moves.append(QueueMove(item, here, first_stock))
    return moves


@dataclass(frozen=True, slots=True)
class PrintJobSpec:
    """One print job to create; `copy_number` counts 1..n per part within its line item/batch."""

    key: str
    purpose: JobPurpose
    part_id: str
    file_id: str
    copy_number: int
    order_id: str | None = None
    line_item_id: str | None = None
    stock_batch_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobStatusSummary:
    """Counts per status for a set of jobs (the "job status summary" query)."""

    counts: Mapping[PrintJobStatus, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def completed(self) -> int:
        return self.counts.get(PrintJobStatus.COMPLETED, 0)

    @property
    def active(self) -> int:
        return sum(self.counts.get(s, 0) for s in ACTIVE_JOB_STATUSES)

    @property
    def all_completed(self) -> bool:
        return self.total > 0 and self.completed == self.total


def summarize(statuses: Iterable[PrintJobStatus]) -> JobStatusSummary:
    tally = Counter(statuses)
    return JobStatusSummary(MappingProxyType({s: tally.get(s, 0) for s in PrintJobStatus}))


def farm_time(reported: datetime | None, received: datetime) -> datetime:
    """When a farm event happened, as a job keeps it (started_at, completed_at, status_at): the
    farm's own time, but never later than when we apply the event (about when we learned it).

    A farm stamps its events with its clock; one running ahead of ours (a real farm's skew, or
    the sandbox farm's accelerated clock, hours ahead at a demo's speed-up) would otherwise store
    a completion in the future, which no "completed in the last hours" count ever sees."""
    if reported is None:
        return received
    reported = reported if reported.tzinfo else reported.replace(tzinfo=UTC)
    return min(reported, received)
