"""Where a printer stands on the farm floor, for people: the group its tile sits in and the one
thing to do about it (pure: no I/O).

The floor groups its tiles and the overview counts utilisation with this one rule, so the two
never disagree. "Needs attention" comes first: a printer someone must walk to (a bed to clear, an
error, maintenance, a paused print).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from forma3d.domain.printing.fleet import PrinterState


class FloorGroup(StrEnum):
    """In the order the floor shows them."""

    ATTENTION = "attention"
    PRINTING = "printing"
    IDLE = "idle"
    DISABLED = "disabled"
    OFFLINE = "offline"


ATTENTION_STATES = {PrinterState.ERROR: "error", PrinterState.MAINTENANCE: "maintenance",
                    PrinterState.PAUSED: "paused"}
AWAITING_BED_CLEAR = "awaiting bed clear"


@dataclass(frozen=True)
class FloorPlace:
    group: FloorGroup
    why: str  # a few words: "awaiting bed clear", "error", "printing", "ready"...


def floor_place(printer: Mapping[str, Any]) -> FloorPlace:
    """Offline first (nothing else can be known), then what needs a person, then work."""
    state = printer.get("state")
    if not printer.get("online") or state == PrinterState.OFFLINE:
        return FloorPlace(FloorGroup.OFFLINE, "offline")
    if state in ATTENTION_STATES:
        return FloorPlace(FloorGroup.ATTENTION, ATTENTION_STATES[PrinterState(state)])
    if printer.get("current_job_id") is not None or state == PrinterState.PRINTING:
        return FloorPlace(FloorGroup.PRINTING, "printing")
    if not printer.get("enabled", True):
        return FloorPlace(FloorGroup.DISABLED, "disabled")
    if not printer.get("ready"):
        return FloorPlace(FloorGroup.ATTENTION, AWAITING_BED_CLEAR)
    return FloorPlace(FloorGroup.IDLE, "ready")
