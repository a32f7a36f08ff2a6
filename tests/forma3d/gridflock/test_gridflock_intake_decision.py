"""The intake decision for a GRID-CUSTOM line item, from facts only: map, wait, hold, request."""

from __future__ import annotations

from typing import Any

import pytest

from forma3d.domain.gridflock.intake import (
    SWITCHED_OFF,
    Hold,
    JobFacts,
    MapThrough,
    RequestJob,
    Wait,
    decide,
    read_request,
    switched_off,
)
from forma3d.domain.gridflock.planner import PlanOptions
from forma3d.domain.gridflock.profiles import PrinterProfile
from forma3d.domain.gridflock.sku import GridRequest
from forma3d.domain.gridflock.states import GridflockJobStatus, GridflockStep
from forma3d.domain.tenants import TenantSettings

SKU = "GRID-300x200-MAG-PUZZLE-A1"
PROPS = {"Width (mm)": "300", "Depth (mm)": "200", "Magnets": "yes"}
ON = TenantSettings(gridflock_enabled=True)


def request(**settings: Any) -> GridRequest:
    read = read_request(PROPS, TenantSettings(gridflock_enabled=True, **settings))
    assert isinstance(read, GridRequest)
    return read


def test_switched_off_maps_a_hand_made_mapping_of_the_raw_sku_or_holds() -> None:
    assert switched_off("GRID-CUSTOM", mapping_exists=True) == MapThrough("GRID-CUSTOM")
    assert switched_off("GRID-CUSTOM", mapping_exists=False) == Hold(SWITCHED_OFF)
    assert "gridflock_enabled" in SWITCHED_OFF


def test_properties_read_into_the_canonical_sku_whatever_their_spelling() -> None:
    assert request().sku == SKU
    spelled = read_request([{"name": "width", "value": "300 mm"},
                            {"name": "Depth (mm)", "value": "200,0"},
                            {"name": "Magnets", "value": "yes"}], ON)
    assert isinstance(spelled, GridRequest) and spelled.sku == SKU


@pytest.mark.parametrize(("settings", "properties", "words"), [
    ({}, {**PROPS, "Width (mm)": "1500"}, "width: 1500 mm is outside the allowed range 100 to"),
    ({"gridflock_min_mm": 250}, PROPS, "depth: 200 mm is outside the allowed range 250 to"),
    ({}, {"Depth (mm)": "200"}, "width: missing"),
    ({}, None, "width: missing"),
    ({"gridflock_printer_profile": "no-such-printer"}, PROPS, "no-such-printer"),
])
def test_bad_properties_limits_or_profile_hold_with_the_reason(
        settings: dict[str, Any], properties: dict[str, str] | None, words: str) -> None:
    held = read_request(properties, TenantSettings(gridflock_enabled=True, **settings))
    assert isinstance(held, Hold)
    assert held.reason.startswith("GridFlock: ") and words in held.reason


def test_an_existing_mapping_maps_through_the_canonical_sku_whatever_the_job() -> None:
    for job in (None, JobFacts(GridflockJobStatus.FAILED, GridflockStep.SLICING, "x")):
        assert decide(request(), mapping_exists=True, job=job) == MapThrough(SKU)


def test_no_mapping_and_no_job_requests_the_job() -> None:
    wanted = request()
    assert decide(wanted, mapping_exists=False, job=None) == RequestJob(wanted)


@pytest.mark.parametrize("status", ["PENDING", "GENERATING_STL", "SLICING", "UPLOADING",
                                    "MAPPING"])
def test_a_running_job_makes_the_line_item_wait(status: str) -> None:
    decision = decide(request(), mapping_exists=False,
                      job=JobFacts(GridflockJobStatus(status)))
    assert decision == Wait(f"GridFlock: generating plates for {SKU}")


def test_a_failed_job_holds_with_its_step_and_error() -> None:
    failed = JobFacts(GridflockJobStatus.FAILED, GridflockStep.SLICING, "prusa-slicer crashed")
    assert decide(request(), mapping_exists=False, job=failed) == Hold(
        f"GridFlock pipeline for {SKU} failed at SLICING: prusa-slicer crashed")


def test_a_completed_job_whose_mapping_was_removed_holds() -> None:
    decision = decide(request(), mapping_exists=False,
                      job=JobFacts(GridflockJobStatus.COMPLETED))
    assert isinstance(decision, Hold) and "mapping was removed" in decision.reason


def test_a_drawer_the_printer_cannot_split_holds_instead_of_requesting_a_job() -> None:
    tiny = PrinterProfile("test-tiny", "TINY", "Tiny bed", 40, 40, "bambu_a1")
    decision = decide(GridRequest(100, 100, PlanOptions(), tiny), mapping_exists=False, job=None)
    assert isinstance(decision, Hold) and decision.reason.startswith("GridFlock: ")
