"""Printer live state: farm rows parsed into state and telemetry, only state changes written,
and a hundred printers dropping offline at once re-synced on spread-out, widening timers."""

from __future__ import annotations

import random
import time
import uuid
from decimal import Decimal

import pytest

from actors.runtime import Runtime
from actors.sender import deliver_grouped
from forma3d.db.pool import Pool
from forma3d.domain.printing.fleet import Observation, changed_fields, observe_row, offline_delay
from forma3d.handlers.printer import observation
from forma3d.messaging.printer import GetPrinter

ROW = {"id": 1001, "printer": {"name": "MK4 #1", "state": "printing", "online": True,
                               "model": {"name": "Original Prusa MK4", "nozzleDia": 0.4},
                               "temps": {"current": {"tool": [215], "bed": 60}}},
       "job": {"uid": "u-1", "percentage": 42, "time": 600},
       "tags": {"nozzle": 0.6, "material": [{"type": "PETG", "color": "Black", "ext": 1}]}}


def test_a_farm_row_splits_into_state_and_telemetry() -> None:
    seen = observe_row(ROW, at=12.5)
    assert seen.farm_printer_id == 1001 and seen.at == 12.5
    assert seen.state == {"name": "MK4 #1", "model": "Original Prusa MK4",
                          "nozzle_diameter": Decimal("0.6"), "state": "printing", "online": True,
                          "materials": [{"slot": 1, "type": "PETG", "color": "Black",
                                         "hex": None}], "farm_job_uid": "u-1"}
    assert seen.telemetry["progress"] == 42 and seen.telemetry["temps"]["bed"] == 60
    assert Observation.from_payload(seen.as_payload()) == seen


def test_unknown_or_offline_farm_states_are_never_operational() -> None:
    offline = observe_row({**ROW, "printer": {**ROW["printer"], "online": False}}, 0)
    assert offline.state["state"] == "offline" and offline.state["online"] is False
    odd = observe_row({**ROW, "printer": {**ROW["printer"], "state": "on_fire"}}, 0)
    assert odd.state["state"] == "error"


def test_only_changed_state_fields_are_written() -> None:
    seen = observe_row(ROW, 0).state
    stored = {**seen, "nozzle_diameter": Decimal("0.60")}
    assert changed_fields(stored, seen) == {}
    assert changed_fields({**stored, "state": "operational"}, seen) == {"state": "printing"}


def test_offline_backoff_doubles_from_15_to_240_seconds_with_jitter() -> None:
    rng = random.Random(4)
    for attempt, ceiling in [(1, 15), (2, 30), (3, 60), (4, 120), (5, 240), (9, 240)]:
        delays = [offline_delay(attempt, rng) for _ in range(200)]
        assert ceiling <= min(delays) and max(delays) <= ceiling * 1.25
        assert max(delays) - min(delays) > ceiling * 0.1  # jittered, not in lockstep


@pytest.mark.ray
async def test_a_hundred_printers_going_offline_at_once(ray_runtime: Runtime, db_pool: Pool,
                                                        tenant_id: uuid.UUID) -> None:
    ids = [uuid.uuid4() for _ in range(100)]
    await db_pool.executemany(
        "INSERT INTO printers (id, tenant_id, name, farm_printer_id, state, online)"
        " VALUES ($1, $2, $3, $4, 'operational', true)",
        [(p, tenant_id, f"p{n}", 7000 + n) for n, p in enumerate(ids)])
    offline = {**ROW, "printer": {**ROW["printer"], "online": False}, "job": None}
    before = time.time()
    handled = await deliver_grouped(ray_runtime.router, [
        observation(tenant_id, p, observe_row({**offline, "id": 7000 + n}, before)).envelope()
        for n, p in enumerate(ids)])
    after = time.time()
    assert handled == 100
    states = [await ray_runtime.router.call(GetPrinter(tenant_id=tenant_id, printer_id=p))
              for p in ids]
    assert all(s["online"] is False and s["state"] == "offline" for s in states)
    assert all(s["offline_since"] is not None and s["offline_attempts"] == 1 for s in states)
    due = [s["resync_at"] for s in states]
    assert all(before + 15 <= d <= after + 15 * 1.25 for d in due)
    assert max(due) - min(due) > 1.0  # spread out: no re-sync storm
    logged = await db_pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND type = 'printer.changed'",
        tenant_id)
    assert logged == 100
