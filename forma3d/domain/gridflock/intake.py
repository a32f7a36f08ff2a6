"""GridFlock intake as a decision: what a GRID-CUSTOM line item does next, from facts only.

A repeat size maps at once through its canonical SKU. A new size waits (GENERATING) for the
size's one pipeline job, which is requested if none exists. Bad properties, a size outside the
tenant's limits, a failed pipeline or the feature switched off hold the line item
(NEEDS_MAPPING) with the reason an operator can act on. The caller looks the facts up and
applies the decision; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from forma3d.domain.gridflock.errors import GridflockError
from forma3d.domain.gridflock.presets import PresetSpec, choices
from forma3d.domain.gridflock.sku import GridRequest, SizeLimits, parse_line_item
from forma3d.domain.gridflock.states import GridflockJobStatus, GridflockStep
from forma3d.domain.tenants import TenantSettings

SWITCHED_OFF = ("GridFlock custom baseplates are off for this tenant "
                "(tenant setting gridflock_enabled)")
Properties = Mapping[str, object] | Iterable[Mapping[str, object]]


@dataclass(frozen=True)
class MapThrough:
    """Expand the line item through this SKU's product mapping."""

    sku: str


@dataclass(frozen=True)
class Wait:
    """The SKU's pipeline is running: the line item waits GENERATING."""

    reason: str


@dataclass(frozen=True)
class Hold:
    """Nothing will come of waiting: the line item is held NEEDS_MAPPING with the reason."""

    reason: str


@dataclass(frozen=True)
class RequestJob:
    """The size has neither mapping nor job: request the job, then decide again with it."""

    request: GridRequest


Decision = MapThrough | Wait | Hold | RequestJob


@dataclass(frozen=True)
class JobFacts:
    """What the intake needs to know of the size's GridFlock job."""

    status: GridflockJobStatus
    failed_step: GridflockStep | None = None
    error: str | None = None


def switched_off(sku: str, *, mapping_exists: bool) -> MapThrough | Hold:
    """GridFlock is off: a hand-made mapping for the raw SKU still works, else hold."""
    return MapThrough(sku) if mapping_exists else Hold(SWITCHED_OFF)


def unknown_preset(name: str, known: Iterable[str]) -> Hold:
    listed = ", ".join(sorted(known)) or "none"
    return Hold(f"GridFlock: unknown preset {name!r} (this shop's presets: {listed})")


def read_request(properties: Properties | None, settings: TenantSettings,
                 preset: PresetSpec | None = None) -> GridRequest | Hold:
    """The drawer the line item asks for, made with the preset's choices (or the tenant's),
    within the tenant's size limits."""
    try:
        profile, options = choices(settings, preset)
        return parse_line_item(
            properties or {}, profile,
            SizeLimits(settings.gridflock_min_mm, settings.gridflock_max_mm), options)
    except GridflockError as error:  # bad properties, size outside the limits, unknown profile
        return Hold(f"GridFlock: {error}")


def decide(request: GridRequest, *, mapping_exists: bool, job: JobFacts | None) -> Decision:
    """The next move for a valid request, given its canonical SKU's mapping and job."""
    sku = request.sku
    if mapping_exists:
        return MapThrough(sku)
    if job is None:
        try:
            request.plan()
        except GridflockError as error:  # the drawer cannot be split for this printer
            return Hold(f"GridFlock: {error}")
        return RequestJob(request)
    if job.status == GridflockJobStatus.FAILED:
        step = job.failed_step.value if job.failed_step else None
        return Hold(f"GridFlock pipeline for {sku} failed at {step}: {job.error}")
    if job.status == GridflockJobStatus.COMPLETED:
        return Hold(f"GridFlock job for {sku} completed but its product mapping was removed; "
                    "create a mapping for the SKU")
    return Wait(f"GridFlock: generating plates for {sku}")
