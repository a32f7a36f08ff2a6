"""What the farm needs from a gcode file: its estimated print time, as slicers write it."""

from __future__ import annotations

import re

# PrusaSlicer/SuperSlicer: "; estimated printing time (normal mode) = 1d 2h 3m 4s"
# BambuStudio/OrcaSlicer: "; model printing time: 1h 2m 3s; total estimated time: 1h 9m 10s"
_PATTERNS = (
    re.compile(rb";\s*estimated printing time \(normal mode\)\s*=\s*([0-9dhms ]+)"),
    re.compile(rb";\s*total estimated time:\s*([0-9dhms ]+)"),
    re.compile(rb";\s*model printing time:\s*([0-9dhms ]+)"),
)
_PART = re.compile(r"(\d+)\s*([dhms])")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int | None:
    """Seconds in a slicer duration like ``1d 2h 3m 4s``; None if nothing parses."""
    parts = _PART.findall(text)
    if not parts:
        return None
    return sum(int(amount) * _UNIT[unit] for amount, unit in parts)


def estimated_seconds(content: bytes) -> int | None:
    """The slicer's print-time estimate from gcode comments, or None if there is none."""
    for pattern in _PATTERNS:
        match = pattern.search(content)
        if match:
            seconds = parse_duration(match.group(1).decode("ascii", "replace"))
            if seconds:
                return seconds
    return None
