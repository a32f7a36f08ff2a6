from __future__ import annotations

import pytest

from forma3d.domain.gridflock.errors import Step, StepFailed
from forma3d.gridflock.slicing import parse_duration, parse_gcode_stats

PRUSA_TAIL = """G1 X10 Y10
; filament used [mm] = 6978.07
; filament used [cm3] = 16.78
; filament used [g] = 20.81
; total filament used [g] = 20.81
; estimated printing time (normal mode) = 1h 9m 57s
; estimated printing time (silent mode) = 1h 10m 5s
"""


@pytest.mark.parametrize(
    "text,seconds",
    [("1h 2m 3s", 3723), ("45m 10s", 2710), ("31s", 31), ("1d 0h 0m 1s", 86401), ("2h", 7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_prusaslicer_footer() -> None:
    stats = parse_gcode_stats(PRUSA_TAIL)
    assert stats.print_seconds == 4197 and stats.filament_g == 20.81


def test_multi_extruder_grams_are_summed() -> None:
    text = "; filament used [g] = 1.50, 2.25\n; estimated printing time (normal mode) = 5m 0s\n"
    assert parse_gcode_stats(text).filament_g == 3.75


def test_bambu_header() -> None:
    text = "; total estimated time: 2h 3m 4s\n; total filament weight [g] : 41.07\n"
    stats = parse_gcode_stats(text)
    assert stats.print_seconds == 7384 and stats.filament_g == 41.07


def test_missing_lines_fail_at_slicing() -> None:
    with pytest.raises(StepFailed) as info:
        parse_gcode_stats("G28\n")
    assert info.value.step is Step.SLICING
