"""What slicers write into gcode comments: the print-time estimate and the filament weight.

One reader for the sandbox farm, print-file uploads and GridFlock's slicing step.
"""

from __future__ import annotations

import re
from decimal import Decimal

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


# PrusaSlicer: "; total filament used [g] = 12.34" (or per extruder "; filament used [g] = 1, 2");
# BambuStudio/OrcaSlicer: "; total filament weight [g] : 12.34,0.00".
_GRAMS = (
    re.compile(rb";\s*total filament (?:used|weight) \[g\]\s*[=:]\s*([0-9., ]+)"),
    re.compile(rb";\s*filament used \[g\]\s*[=:]\s*([0-9., ]+)"),
)


def filament_grams(content: bytes) -> Decimal | None:
    """The slicer's filament weight (summed over extruders), or None if there is none."""
    for pattern in _GRAMS:
        match = pattern.search(content)
        if match:
            values = [v.strip() for v in match.group(1).decode("ascii").split(",")]
            total = sum((Decimal(v) for v in values if re.fullmatch(r"\d+(\.\d+)?", v)),
                        Decimal(0))
            if total > 0:
                return total.quantize(Decimal("0.01"))
    return None
