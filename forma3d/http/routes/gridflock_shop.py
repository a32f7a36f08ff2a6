"""GridFlock for the shop: presets (named plate-set choices per tenant) and quotes.

A quote answers from planning, the tenant's settings and PostgreSQL only: it never waits for
plate geometry or a slicer. Its print time and filament are the slicer's figures when the size
was sliced before, else the fitted estimate (`forma3d.domain.gridflock.quote`), labelled so.
Storefronts call it from the browser with a quote-only key (permission `gridflock.quote`);
`forma3d.http.storefront` limits CORS to the tenant's shop.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from forma3d.db.pool import Connection, Pool
from forma3d.domain.gridflock.errors import GridflockError
from forma3d.domain.gridflock.planner import ConnectorStyle, PlateSet
from forma3d.domain.gridflock.presets import PRESET_NAME, Preset, PresetSpec, choices
from forma3d.domain.gridflock.quote import (
    PlateFigures,
    estimate_plate,
    price,
    totals,
)
from forma3d.domain.gridflock.sku import GridRequest, SizeLimits, check_size
from forma3d.domain.tenants import GRIDFLOCK_CEILING_MM, TenantSettings
from forma3d.http.deps import deps, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.routes.api import api
from forma3d.http.routing import json_response
from forma3d.store import gridflock_presets as presets
from forma3d.store.tenants import tenant_settings

TAG = "gridflock"
_NAME = re.compile(PRESET_NAME)


# --- presets --------------------------------------------------------------------------------


class PresetOut(Preset):
    id: uuid.UUID


def _name(request: Request) -> str:
    name = str(request.path_params["name"]).lower()
    if not _NAME.match(name):
        raise Problem(404, f"GridFlock preset {name!r} not found")
    return name


def _out(stored: presets.StoredPreset) -> dict[str, Any]:
    return stored.model_dump(mode="json", exclude={"created_at", "updated_at"})


@api.route("GET", "/gridflock/presets", "The tenant's GridFlock presets, by name",
           response=list[PresetOut], tags=(TAG,), permission="gridflock.read")
async def list_presets(request: Request) -> list[dict[str, Any]]:
    return [_out(p) for p in await presets.list_presets(deps(request).pool, tenant_of(request))]


@api.route("GET", "/gridflock/presets/{name}", "Get one GridFlock preset",
           response=PresetOut, tags=(TAG,), permission="gridflock.read")
async def get_preset(request: Request) -> dict[str, Any]:
    name = _name(request)
    found = await presets.find_preset(deps(request).pool, tenant_of(request), name)
    if found is None:
        raise Problem(404, f"GridFlock preset {name!r} not found")
    return _out(found)


@api.route("POST", "/gridflock/presets", "Create a GridFlock preset; orders name it by the "
           "shop SKU GRID-CUSTOM-<name> or a line-item property Preset", body=Preset,
           response=PresetOut, status=201, tags=(TAG,), permission="gridflock.write",
           example={"name": "mk4_magnets", "printer_profile": "prusa-mk4", "magnets": True,
                    "magnet_diameter_mm": 8, "magnet_depth_mm": 3, "brim_mm": 3})
async def create_preset(request: Request, body: Preset) -> Response:
    try:
        stored = await presets.create_preset(deps(request).pool, tenant_of(request), body)
    except presets.PresetExists as exists:
        raise Problem(409, str(exists)) from None
    return json_response(_out(stored), 201)


@api.route("PUT", "/gridflock/presets/{name}", "Replace a GridFlock preset's choices (sizes "
           "already made keep their plates: the choices are part of their SKU)", body=PresetSpec,
           response=PresetOut, tags=(TAG,), permission="gridflock.write")
async def replace_preset(request: Request, body: PresetSpec) -> dict[str, Any]:
    name = _name(request)
    stored = await presets.replace_preset(deps(request).pool, tenant_of(request), name, body)
    if stored is None:
        raise Problem(404, f"GridFlock preset {name!r} not found")
    return _out(stored)


@api.route("DELETE", "/gridflock/presets/{name}", "Delete a GridFlock preset", status=204,
           tags=(TAG,), permission="gridflock.write")
async def delete_preset(request: Request) -> Response:
    name = _name(request)
    if not await presets.delete_preset(deps(request).pool, tenant_of(request), name):
        raise Problem(404, f"GridFlock preset {name!r} not found")
    return Response(status_code=204)


# --- quotes ---------------------------------------------------------------------------------


class QuoteOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    magnets: bool | None = None
    connector: ConnectorStyle | None = None


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width_mm: float = Field(gt=0, le=GRIDFLOCK_CEILING_MM, description="drawer width (X) in mm")
    depth_mm: float = Field(gt=0, le=GRIDFLOCK_CEILING_MM, description="drawer depth (Y) in mm")
    preset: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{1,40}$",
                               description="one of the tenant's presets; without one, "
                               "the tenant's GridFlock settings")
    options: QuoteOptions = Field(default_factory=QuoteOptions,
                                  description="switch magnets or connectors from the preset's")


class QuotePlate(BaseModel):
    number: int
    count: int
    width_mm: float
    depth_mm: float
    print_seconds: int
    filament_g: float


class QuotePrice(BaseModel):
    currency: str
    amount: str = Field(description="the price, a decimal string (e.g. \"24.90\")")
    subtotal: str = Field(description="before the minimum and rounding")
    cells: str
    plates: int
    magnets: int
    minimum_applied: bool


class QuoteOut(BaseModel):
    sku: str
    preset: str | None
    printer_profile: str
    figures: Literal["sliced", "estimate"] = Field(
        description="sliced: the slicer's own figures for these plates; estimate: the model")
    print_seconds: int
    filament_g: float
    total_plates: int
    unique_plates: int
    plates: list[QuotePlate]
    price: QuotePrice


def _refuse(error: GridflockError) -> Problem:
    field = getattr(error, "field", "body")
    return Problem(422, str(error), errors=[{"field": field, "message": str(error)}])


@api.route("POST", "/gridflock/quote", "Quote a drawer: plates, print time, filament and price "
           "(never waits for geometry or a slicer); sizes beyond the tenant's limits get 422 "
           "naming the limit", body=QuoteIn, response=QuoteOut, tags=(TAG,),
           permission="gridflock.quote", example={"width_mm": 523, "depth_mm": 387,
                                                  "preset": "mk4_magnets"})
async def quote(request: Request, body: QuoteIn) -> dict[str, Any]:
    tenant_id = tenant_of(request)
    # One connection for the few reads (each pool checkout costs a round trip to reset it).
    async with deps(request).pool.acquire() as conn:
        settings = await tenant_settings(conn, tenant_id)
        pricing = settings.gridflock_pricing
        if pricing is None:
            raise Problem(409, "this shop has no GridFlock price model (tenant setting "
                          "gridflock_pricing)")
        preset: PresetSpec | None = None
        if body.preset is not None:
            preset = await presets.find_preset(conn, tenant_id, body.preset)
            if preset is None:
                detail = f"unknown GridFlock preset {body.preset!r}"
                raise Problem(422, detail, errors=[{"field": "preset", "message": detail}])
        request_, plan = _plan(body, settings, preset)
        sliced = await _sliced_figures(conn, tenant_id, request_.sku, plan)
    profile = request_.profile
    figures = sliced or {p.number: estimate_plate(p) for p in plan.plates}
    total = totals(plan, figures)
    cost = price(pricing, plan)
    return {
        "sku": request_.sku, "preset": body.preset and body.preset.lower(),
        "printer_profile": profile.id, "figures": "sliced" if sliced else "estimate",
        "print_seconds": total.print_seconds, "filament_g": total.filament_g,
        "total_plates": plan.total_plates, "unique_plates": len(plan.plates),
        "plates": [{"number": p.number, "count": p.count, "width_mm": p.width_mm,
                    "depth_mm": p.depth_mm, "print_seconds": figures[p.number].print_seconds,
                    "filament_g": figures[p.number].filament_g} for p in plan.plates],
        "price": {"currency": cost.currency, "amount": str(cost.amount),
                  "subtotal": _plain(cost.subtotal), "cells": _plain(cost.cells),
                  "plates": cost.plates, "magnets": cost.magnets,
                  "minimum_applied": cost.minimum_applied},
    }


def _plan(body: QuoteIn, settings: TenantSettings, preset: PresetSpec | None
          ) -> tuple[GridRequest, PlateSet]:
    """The request (the preset's choices or the tenant's, switched by the body's options)
    within the tenant's limits, and its plan; 422 naming what is wrong."""
    limits = SizeLimits(settings.gridflock_min_mm, settings.gridflock_max_mm)
    try:
        width = check_size("width_mm", body.width_mm, limits)
        depth = check_size("depth_mm", body.depth_mm, limits)
        profile, options = choices(settings, preset)
        if body.options.magnets is not None:
            options = replace(options, magnets=body.options.magnets)
        if body.options.connector is not None:
            options = replace(options, connector=body.options.connector)
        request = GridRequest(width, depth, options, profile)
        return request, request.plan()
    except GridflockError as error:
        raise _refuse(error) from None


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (`7`, `7.5`)."""
    return format(value.normalize(), "f")


async def _sliced_figures(pool: Pool | Connection, tenant_id: uuid.UUID, sku: str,
                          plan: PlateSet) -> dict[int, PlateFigures] | None:
    """The slicer's figures per plate, when this size's job sliced every plate already."""
    plates = await pool.fetchval(
        "SELECT plates FROM gridflock_jobs WHERE tenant_id = $1 AND sku = $2", tenant_id, sku)
    found: dict[int, PlateFigures] = {}
    for p in plates or []:
        if p.get("print_seconds") is not None and p.get("filament_g") is not None:
            found[int(p["number"])] = PlateFigures(int(p["print_seconds"]),
                                                   float(p["filament_g"]))
    if all(p.number in found for p in plan.plates):
        return found
    return None
