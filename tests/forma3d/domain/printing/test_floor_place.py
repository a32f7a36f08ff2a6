"""A printer's place on the floor: offline first, then what needs a person, then work."""

from __future__ import annotations

from typing import Any

import pytest

from forma3d.domain.printing.floor import FloorGroup, floor_place

IDLE = {"state": "operational", "online": True, "enabled": True, "ready": True,
        "current_job_id": None}


@pytest.mark.parametrize(("changes", "group", "why"), [
    ({}, FloorGroup.IDLE, "ready"),
    ({"ready": False}, FloorGroup.ATTENTION, "awaiting bed clear"),
    ({"state": "error"}, FloorGroup.ATTENTION, "error"),
    ({"state": "maintenance", "ready": False}, FloorGroup.ATTENTION, "maintenance"),
    ({"state": "paused", "current_job_id": "j"}, FloorGroup.ATTENTION, "paused"),
    ({"state": "printing", "current_job_id": "j", "ready": False}, FloorGroup.PRINTING,
     "printing"),
    ({"current_job_id": "j", "enabled": False}, FloorGroup.PRINTING, "printing"),
    ({"enabled": False, "ready": False}, FloorGroup.DISABLED, "disabled"),
    ({"online": False, "state": "error"}, FloorGroup.OFFLINE, "offline"),
    ({"state": "offline"}, FloorGroup.OFFLINE, "offline"),
])
def test_floor_place(changes: dict[str, Any], group: FloorGroup, why: str) -> None:
    place = floor_place(IDLE | changes)
    assert (place.group, place.why) == (group, why)
