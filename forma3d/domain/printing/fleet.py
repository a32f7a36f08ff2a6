"""A printer's live state as the farm reports it, split into what PostgreSQL keeps and what only
dashboards need (pure: no I/O).

SimplyPrint reports a printer in a printers/Get row and in webhooks. The *state* fields (online,
state, model, nozzle, loaded material, current job) change a few times per print and are written
through to PostgreSQL; *telemetry* (temperatures, progress, layer) changes every few seconds and
stays in memory and on the tenant's Redis channel, never in the database at that rate.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from forma3d.domain.printing.matching import nozzle_key
from forma3d.retry import backoff_delay

OFFLINE_BASE = 15.0
OFFLINE_CAP = 240.0


class PrinterState(StrEnum):
    OFFLINE = "offline"
    OPERATIONAL = "operational"
    PRINTING = "printing"
    PAUSED = "paused"
    ERROR = "error"
    MAINTENANCE = "maintenance"


# SimplyPrint's printer states onto ours (its vocabulary is larger; unknown ones are errors an
# operator should look at, never a silent "operational").
FARM_STATES: Mapping[str, PrinterState] = {
    "offline": PrinterState.OFFLINE, "operational": PrinterState.OPERATIONAL,
    "printing": PrinterState.PRINTING, "pausing": PrinterState.PAUSED,
    "paused": PrinterState.PAUSED, "resuming": PrinterState.PRINTING,
    "cancelling": PrinterState.PRINTING, "error": PrinterState.ERROR,
    "download": PrinterState.PRINTING, "maintenance": PrinterState.MAINTENANCE,
    "not_ready": PrinterState.MAINTENANCE,
}

STATE_FIELDS = ("name", "model", "nozzle_diameter", "state", "online", "materials",
                "farm_job_uid")


@dataclass(frozen=True)
class Observation:
    """One look at a printer: the state fields and the telemetry, with when it was seen."""

    farm_printer_id: int
    state: dict[str, Any]
    telemetry: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0  # epoch seconds of the source event, for lag measurement

    def as_payload(self) -> dict[str, Any]:
        return {"farm_printer_id": self.farm_printer_id, "state": self.state,
                "telemetry": self.telemetry, "at": self.at}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Observation:
        """Back from a message (JSON on the wire: the nozzle arrives as a string)."""
        state = dict(payload.get("state") or {})
        if isinstance(state.get("nozzle_diameter"), str | float | int):
            state["nozzle_diameter"] = Decimal(str(state["nozzle_diameter"]))
        return cls(int(payload["farm_printer_id"]), state,
                   dict(payload.get("telemetry") or {}), float(payload.get("at") or 0.0))


def farm_state(value: str | None, online: bool | None) -> PrinterState:
    if online is False:
        return PrinterState.OFFLINE
    return FARM_STATES.get((value or "").lower(), PrinterState.ERROR)


def observe_row(row: Mapping[str, Any], at: float) -> Observation:
    """A printers/Get row (`id`, `printer{...}`, `job`, `tags`) as an Observation."""
    info = row.get("printer") or {}
    tags = row.get("tags") or {}
    model = info.get("model") or {}
    nozzle = tags.get("nozzle", model.get("nozzleDia"))
    materials = [{"slot": int(m.get("ext") or 0), "type": str(m.get("type") or ""),
                  "color": str(m.get("color") or ""), "hex": m.get("hex")}
                 for m in tags.get("material") or []]
    job = row.get("job") or {}
    state: dict[str, Any] = {
        "name": info.get("name") or f"printer {row['id']}",
        "model": model.get("name") or None,
        "nozzle_diameter": Decimal(nozzle_key(nozzle)) if nozzle not in (None, "") else None,
        "state": farm_state(info.get("state"), info.get("online")).value,
        "online": bool(info.get("online", info.get("state") not in (None, "offline"))),
        "materials": materials,
        "farm_job_uid": job.get("uid"),
    }
    temps = info.get("temps") or {}
    telemetry = {"temps": temps.get("current"), "targets": temps.get("target"),
                 "progress": job.get("percentage"), "layer": job.get("layer"),
                 "time_left": job.get("time")}
    return Observation(int(row["id"]), state, telemetry, at)


def changed_fields(current: Mapping[str, Any], seen: Mapping[str, Any]) -> dict[str, Any]:
    """State fields whose observed value differs from what PostgreSQL holds."""
    out = {}
    for name in STATE_FIELDS:
        if name not in seen:
            continue
        old, new = current.get(name), seen[name]
        if name == "nozzle_diameter" and old is not None and new is not None:
            if nozzle_key(old) == nozzle_key(new):
                continue
        elif old == new:
            continue
        out[name] = new
    return out


def offline_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before re-syncing an offline printer: 15 s doubling to 240 s, plus up to a
    quarter more of jitter (the one backoff policy), so a hundred printers dropping together
    come back spread out instead of as one storm."""
    ceiling = min(OFFLINE_CAP, OFFLINE_BASE * 2.0 ** max(0, attempt - 1))
    return ceiling + backoff_delay(attempt, base=OFFLINE_BASE / 4, cap=OFFLINE_CAP / 4, rng=rng)
