"""Matching rules (pure): tags against live state, reasons named, best job first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from forma3d.domain.printing.matching import Reason, best_job, explain, fits, nozzle_key

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def printer(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "p1", "model": "MK4", "nozzle_diameter": Decimal("0.40"), "state": "operational",
        "online": True, "enabled": True, "ready": True, "current_job_id": None,
        "tags": ["Enclosure"], "materials": [{"slot": 0, "type": "PLA", "color": "Black"},
                                             {"slot": 1, "type": "PETG", "color": "White"}]}
    return base | over


def job(job_id: str, priority: int = 0, position: int = 0, age: int = 0,
        tags: list[str] | None = None) -> dict[str, Any]:
    return {"id": job_id, "priority": priority, "position": position,
            "created_at": T0 - timedelta(seconds=age), "required_tags": tags or []}


def test_nozzle_sizes_compare_as_numbers() -> None:
    assert nozzle_key(Decimal("0.40")) == nozzle_key("0.4") == nozzle_key(0.4) == "0.4"
    assert nozzle_key("0.6") != nozzle_key("0.4")


def test_prefixed_tags_check_live_state_case_insensitively() -> None:
    p = printer()
    assert fits(p, ["model:mk4", "nozzle:0.4", "material:petg", "color:black", "enclosure"])
    assert not fits(p, ["model:X1C"])
    assert not fits(p, ["nozzle:0.6"])
    assert not fits(p, ["material:ABS"])


def test_filament_needs_type_and_colour_in_the_same_slot() -> None:
    p = printer()
    assert fits(p, ["filament:PLA/Black"])
    assert fits(p, ["material:PLA", "color:White"])  # separate tags: any slot each
    assert not fits(p, ["filament:PLA/White"])


def test_bare_tags_match_user_tags_or_loaded_values() -> None:
    p = printer()
    assert fits(p, ["pla", "white", "mk4"])
    assert not fits(p, ["belt"])


def test_explain_names_every_reason() -> None:
    p = printer(online=False, enabled=False, ready=False, state="offline")
    verdict = explain(p, ["material:ABS", "nozzle:0.6", "belt"])
    assert not verdict.matches and not verdict.fits
    assert verdict.reasons == (Reason.OFFLINE, Reason.DISABLED, Reason.NOT_READY,
                               Reason.WRONG_MATERIAL, Reason.WRONG_NOZZLE, Reason.MISSING_TAG)
    assert verdict.missing_tags == ("material:ABS", "nozzle:0.6", "belt")


def test_explain_busy_and_not_operational() -> None:
    assert explain(printer(current_job_id="j"), []).reasons == (Reason.BUSY,)
    assert explain(printer(state="error"), []).reasons == (Reason.NOT_OPERATIONAL,)
    ok = explain(printer(), ["model:MK4"])
    assert ok.matches and ok.fits and ok.reasons == ()


def test_best_job_is_priority_then_position_then_age_among_fitting() -> None:
    jobs = [job("low", priority=0, position=0, age=100),
            job("high-late", priority=5, position=9),
            job("high-early", priority=5, position=1),
            job("high-early-older", priority=5, position=1, age=10),
            job("best-but-abs", priority=9, tags=["material:ABS"])]
    chosen = best_job(printer(), jobs)
    assert chosen is not None and chosen["id"] == "high-early-older"
    assert best_job(printer(), [job("abs", tags=["material:ABS"])]) is None
