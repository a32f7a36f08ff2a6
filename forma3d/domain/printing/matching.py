"""Which printer may print which job, and why not (pure: no I/O).

A job's `required_tags` use one vocabulary, like Printago's `requiredPrinterTags`:

- `model:<name>`, `nozzle:<mm>`, `material:<type>`, `color:<colour>`, `filament:<type>/<colour>`
  (type and colour loaded in the *same* slot) are checked against the printer's live state;
- any other tag is a user tag: it matches a tag the operator put on the printer, or, as a
  convenience, the printer's model, a loaded material type or a loaded colour (so `pla` works).

Comparison is case-insensitive and nozzle sizes compare as numbers (`0.40` is `0.4`). The same
function decides dispatch and explains the matching endpoint, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

PREFIXES = ("model", "nozzle", "material", "color", "filament")


class Reason(StrEnum):
    """Why a printer cannot take a job now; the order is the order an operator fixes them in."""

    OFFLINE = "offline"
    DISABLED = "disabled"
    BUSY = "busy"
    NOT_OPERATIONAL = "not_operational"
    NOT_READY = "not_ready"
    WRONG_MODEL = "wrong_model"
    WRONG_NOZZLE = "wrong_nozzle"
    WRONG_MATERIAL = "wrong_material"
    WRONG_COLOR = "wrong_color"
    WRONG_FILAMENT = "wrong_filament"
    MISSING_TAG = "missing_tag"


TAG_REASON = {"model": Reason.WRONG_MODEL, "nozzle": Reason.WRONG_NOZZLE,
              "material": Reason.WRONG_MATERIAL, "color": Reason.WRONG_COLOR,
              "filament": Reason.WRONG_FILAMENT}


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def nozzle_key(value: Any) -> str:
    """A nozzle size as a canonical string: 0.40, '0.4' and Decimal('0.400') are all '0.4'."""
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return _norm(value)
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Capabilities:
    """What a printer offers, from its live state."""

    model: str | None
    nozzle: str | None
    slots: tuple[tuple[str, str], ...]  # (material type, colour) per loaded slot
    user_tags: frozenset[str]

    @classmethod
    def of(cls, printer: Mapping[str, Any]) -> Capabilities:
        slots = tuple((_norm(m.get("type", "")), _norm(m.get("color", "")))
                      for m in printer.get("materials") or [])
        model = printer.get("model")
        nozzle = printer.get("nozzle_diameter")
        return cls(_norm(model) if model else None,
                   nozzle_key(nozzle) if nozzle is not None else None,
                   slots, frozenset(_norm(t) for t in printer.get("tags") or []))

    def offers(self, tag: str) -> bool:
        prefix, sep, value = _norm(tag).partition(":")
        if sep and prefix in PREFIXES:
            if prefix == "model":
                return self.model == value
            if prefix == "nozzle":
                return self.nozzle == nozzle_key(value)
            if prefix == "material":
                return any(t == value for t, _ in self.slots)
            if prefix == "color":
                return any(c == value for _, c in self.slots)
            kind, _, colour = value.partition("/")
            return (kind.strip(), colour.strip()) in self.slots
        bare = _norm(tag)
        return (bare in self.user_tags or bare == self.model
                or any(bare in slot for slot in self.slots))


def tag_reason(tag: str) -> Reason:
    prefix, sep, _ = _norm(tag).partition(":")
    return TAG_REASON.get(prefix, Reason.MISSING_TAG) if sep else Reason.MISSING_TAG


@dataclass(frozen=True)
class Verdict:
    """One printer against one job: matches, or every reason it does not (with the tags)."""

    printer_id: str
    matches: bool
    fits: bool  # the tags fit, whatever the printer is doing now
    reasons: tuple[Reason, ...] = ()
    missing_tags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"printer_id": self.printer_id, "matches": self.matches, "fits": self.fits,
                "reasons": [r.value for r in self.reasons],
                "missing_tags": list(self.missing_tags)}


def availability(printer: Mapping[str, Any]) -> list[Reason]:
    """Why a printer cannot start a job now (empty: it can)."""
    reasons = []
    if not printer.get("online"):
        reasons.append(Reason.OFFLINE)
    if not printer.get("enabled", True):
        reasons.append(Reason.DISABLED)
    if printer.get("current_job_id") is not None:
        reasons.append(Reason.BUSY)
    elif printer.get("online") and printer.get("state") != "operational":
        reasons.append(Reason.NOT_OPERATIONAL)
    if not printer.get("ready"):
        reasons.append(Reason.NOT_READY)
    return reasons


def missing_tags(caps: Capabilities, required: Iterable[str]) -> list[str]:
    return [tag for tag in required if not caps.offers(tag)]


def fits(printer: Mapping[str, Any], required: Iterable[str]) -> bool:
    return not missing_tags(Capabilities.of(printer), required)


def explain(printer: Mapping[str, Any], required: Sequence[str]) -> Verdict:
    """The whole answer for the matching endpoint: state reasons first, then tag reasons."""
    missing = missing_tags(Capabilities.of(printer), required)
    reasons = availability(printer)
    for tag in missing:
        reason = tag_reason(tag)
        if reason not in reasons:
            reasons.append(reason)
    return Verdict(str(printer.get("id")), not reasons, not missing, tuple(reasons),
                   tuple(missing))


@dataclass(frozen=True, order=True)
class QueueKey:
    """Best first: order jobs before stock jobs (a stock job never takes a printer an order
    job fits), then higher priority, then lower position, then older."""

    stock: bool
    neg_priority: int
    position: int
    created_at: datetime
    job_id: str = field(compare=True)

    @classmethod
    def of(cls, job: Mapping[str, Any]) -> QueueKey:
        return cls(job.get("purpose") == "STOCK", -int(job["priority"]), int(job["position"]),
                   job["created_at"], str(job["id"]))


def best_job(printer: Mapping[str, Any],
             jobs: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The best queued job this printer's tags fit (availability is the caller's concern)."""
    caps = Capabilities.of(printer)
    fitting = [j for j in jobs if not missing_tags(caps, j.get("required_tags") or [])]
    return min(fitting, key=QueueKey.of, default=None)


@dataclass(frozen=True)
class QueueRequirements:
    """A job's tags as SimplyPrint's queue/AddItem states them: `for_models` (the farm's model
    ids) and `tags` (nozzle, and the material of the first slot: type and colour), so the farm's
    own queue only offers the item to printers our matching would choose. User tags have no
    AddItem equivalent (SimplyPrint's custom tags are ids) and are left out."""

    for_models: tuple[int, ...] = ()
    tags: Mapping[str, Any] = field(default_factory=dict)
    unknown_models: tuple[str, ...] = ()


def queue_requirements(required_tags: Iterable[str],
                       model_ids: Mapping[str, int]) -> QueueRequirements:
    """`model_ids`: the farm's model ids by model name (any case)."""
    models = {_norm(k): v for k, v in model_ids.items()}
    for_models: list[int] = []
    unknown: list[str] = []
    slot: dict[str, str] = {}
    tags: dict[str, Any] = {}
    for tag in required_tags:
        prefix, sep, value = str(tag).strip().partition(":")
        prefix, value = prefix.strip().lower(), value.strip()
        if not sep or not value:
            continue
        if prefix == "model":
            found = models.get(_norm(value))
            if found is None:
                unknown.append(value)
            elif found not in for_models:
                for_models.append(found)
        elif prefix == "nozzle":
            try:
                tags["nozzle"] = float(nozzle_key(value))
            except ValueError:
                continue
        elif prefix == "material":
            slot["type"] = value
        elif prefix == "color":
            slot["color"] = value
        elif prefix == "filament":
            kind, _, colour = value.partition("/")
            slot.update({k: v.strip() for k, v in (("type", kind), ("color", colour)) if v.strip()})
    if slot:
        tags["material"] = [{"ext": 0, **slot}]
    return QueueRequirements(tuple(for_models), tags, tuple(unknown))
