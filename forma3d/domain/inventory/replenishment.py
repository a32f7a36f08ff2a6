"""Replenishment: which products to print to stock, how many, and when.

A product below its minimum (counting units already being printed for stock) is filled up to
its maximum (its minimum when it has none), in batches of its batch size, most urgent first:
higher priority, then the emptier shelf relative to its minimum. Stock jobs run in the tenant's
quiet hours, when order jobs leave printers idle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class StockTarget:
    """One product's stock as the planner sees it."""

    mapping_id: str
    available: int
    in_production: int
    minimum: int
    maximum: int | None
    priority: int
    batch_size: int

    def __post_init__(self) -> None:
        if self.minimum < 0 or self.batch_size < 1 or self.in_production < 0:
            raise ValueError("replenishment: minimum >= 0, batch_size >= 1, in_production >= 0")
        if self.maximum is not None and self.maximum < self.minimum:
            raise ValueError(f"replenishment: maximum {self.maximum} < minimum {self.minimum}")

    @property
    def projected(self) -> int:
        return self.available + self.in_production

    @property
    def shortfall(self) -> int:
        """Units to schedule now: 0 at or above the minimum, else up to the maximum."""
        if self.projected >= self.minimum:
            return 0
        target = self.minimum if self.maximum is None else self.maximum
        return target - self.projected


@dataclass(frozen=True, slots=True)
class PlannedBatch:
    mapping_id: str
    units: int


def urgency(target: StockTarget) -> tuple[int, float, str]:
    """Sort key, most urgent first: priority, then how empty the shelf is against its minimum."""
    fill = target.projected / target.minimum if target.minimum else 1.0
    return (-target.priority, fill, target.mapping_id)


def plan(targets: Iterable[StockTarget]) -> list[PlannedBatch]:
    """The batches of one replenishment cycle, in priority order, each at most `batch_size`."""
    batches: list[PlannedBatch] = []
    for target in sorted(targets, key=urgency):
        need = target.shortfall
        while need > 0:
            units = min(need, target.batch_size)
            batches.append(PlannedBatch(target.mapping_id, units))
            need -= units
    return batches


def parse_clock(value: str) -> time:
    """"HH:MM" as a time of day; ValueError otherwise."""
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"time of day {value!r} is not HH:MM")
    return time(int(hours), int(minutes))


def in_quiet_hours(now: datetime, zone: str, start: str, end: str) -> bool:
    """Whether `now` (aware) falls in [start, end) in the tenant's time zone; a window may wrap
    over midnight (22:00-06:00); start == end means all day."""
    if now.tzinfo is None:
        raise ValueError("quiet hours: `now` must be timezone-aware")
    local = now.astimezone(ZoneInfo(zone)).time().replace(tzinfo=None)
    begin, finish = parse_clock(start), parse_clock(end)
    if begin == finish:
        return True
    if begin < finish:
        return begin <= local < finish
    return local >= begin or local < finish
