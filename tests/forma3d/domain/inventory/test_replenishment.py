"""Replenishment planning and quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.inventory.replenishment import (
    PlannedBatch,
    StockTarget,
    in_quiet_hours,
    parse_clock,
    plan,
)


def target(mid: str, available: int, *, minimum: int = 5, maximum: int | None = 10,
           priority: int = 0, batch: int = 4, producing: int = 0) -> StockTarget:
    return StockTarget(mid, available, producing, minimum, maximum, priority, batch)


def test_fills_up_to_the_maximum_in_batches_most_urgent_first() -> None:
    batches = plan([target("a", 4, priority=0), target("b", 1, priority=5, batch=10),
                    target("c", 9), target("d", 0, maximum=None, batch=2)])
    assert batches == [PlannedBatch("b", 9), PlannedBatch("d", 2), PlannedBatch("d", 2),
                       PlannedBatch("d", 1), PlannedBatch("a", 4), PlannedBatch("a", 2)]


def test_units_being_printed_count_so_a_second_tick_plans_nothing() -> None:
    assert plan([target("a", 1, producing=9)]) == []
    assert plan([target("a", 1, producing=2)]) == [PlannedBatch("a", 4), PlannedBatch("a", 3)]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="maximum 1 < minimum 5"):
        target("a", 0, maximum=1)
    with pytest.raises(ValueError, match="batch_size >= 1"):
        target("a", 0, batch=0)


@given(st.integers(-5, 50), st.integers(0, 20), st.integers(0, 30), st.integers(0, 20),
       st.integers(1, 7))
def test_never_overshoots_the_target(available: int, producing: int, minimum: int, extra: int,
                                     batch: int) -> None:
    t = StockTarget("a", available, producing, minimum, minimum + extra, 0, batch)
    batches = plan([t])
    assert all(1 <= b.units <= batch for b in batches)
    units = sum(b.units for b in batches)
    assert units == (0 if t.projected >= minimum else minimum + extra - t.projected)


@pytest.mark.parametrize(("hour", "zone", "quiet"), [
    (21, "UTC", False), (22, "UTC", True), (3, "UTC", True), (6, "UTC", False),
    # 20:00 UTC is 22:00 in Amsterdam in summer (UTC+2)
    (20, "Europe/Amsterdam", True), (4, "Europe/Amsterdam", False)])
def test_quiet_hours_wrap_over_midnight_in_the_tenant_zone(hour: int, zone: str,
                                                           quiet: bool) -> None:
    now = datetime(2026, 7, 1, hour, 0, tzinfo=UTC)
    assert in_quiet_hours(now, zone, "22:00", "06:00") is quiet


def test_daytime_window_and_all_day() -> None:
    noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert in_quiet_hours(noon, "UTC", "09:00", "17:00")
    assert not in_quiet_hours(noon, "UTC", "13:00", "17:00")
    assert in_quiet_hours(noon, "UTC", "00:00", "00:00")
    with pytest.raises(ValueError, match="not HH:MM"):
        parse_clock("7pm")
