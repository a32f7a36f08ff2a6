"""Printers: queries read PostgreSQL directly; changes go through the printer's entity.

Registering a printer writes its row through forma3d.store.printers: the printer's entity
cannot take a command before its row exists, and a fresh row has no other writer to be
serialised with (a duplicate external id is refused by PostgreSQL's unique index).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request

from forma3d.db.pool import record_to_dict
from forma3d.http.deps import ask, deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.routes.api import api
from forma3d.messaging.printer import PrinterChanges, UpdatePrinter
from forma3d.messaging.text import Text
from forma3d.store import printers
from forma3d.store.printers import NewPrinter, PrinterExists


class Material(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slot: int = Field(ge=0, le=31)
    type: Text = Field(min_length=1, max_length=32)
    color: Text = Field(min_length=1, max_length=32)


Tag = Annotated[Text, Field(min_length=1, max_length=64)]
Diameter = Annotated[Decimal, Field(gt=0, lt=5, decimal_places=2)]


class PrinterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "MK4-01", "model": "MK4", "nozzle_diameter": "0.4", "tags": ["pla"],
         "materials": [{"slot": 0, "type": "PLA", "color": "black"}]}]})
    name: Text = Field(min_length=1, max_length=120)
    external_id: Text | None = Field(default=None, max_length=64)
    model: Text | None = Field(default=None, max_length=64)
    nozzle_diameter: Diameter | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    materials: list[Material] = Field(default_factory=list, max_length=32)
    enabled: bool = True


# Columns that always hold a value: a patch may leave them out, but not set them to null.
NOT_NULL = ("name", "tags", "materials", "enabled", "ready", "auto_ready")


def _document_not_null(schema: dict[str, Any]) -> None:
    for name in NOT_NULL:
        prop = schema["properties"][name]
        prop.update(next(b for b in prop.pop("anyOf") if b.get("type") != "null"))
        prop.pop("default", None)


class PrinterPatch(BaseModel):
    """Only the fields sent change; `model` and `nozzle_diameter` may be null (unknown)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_not_null)
    name: Text | None = Field(default=None, min_length=1, max_length=120)
    model: Text | None = Field(default=None, max_length=64)
    nozzle_diameter: Diameter | None = None
    tags: list[Tag] | None = Field(default=None, max_length=64)
    materials: list[Material] | None = Field(default=None, max_length=32)
    enabled: bool | None = None
    ready: bool | None = None
    auto_ready: bool | None = None

    @field_validator(*NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not null: a printer always has one")
        return value


class PrinterOut(BaseModel):
    id: uuid.UUID
    name: str
    external_id: str | None
    model: str | None
    nozzle_diameter: Decimal | None
    state: str
    online: bool
    enabled: bool
    ready: bool
    tags: list[str]
    materials: list[dict[str, Any]]
    current_job_id: uuid.UUID | None
    farm_printer_id: int | None = None
    auto_ready: bool = False
    state_changed_at: datetime | None = None
    offline_since: datetime | None = None
    created_at: datetime
    updated_at: datetime


async def _owned(request: Request, printer_id: uuid.UUID) -> dict[str, Any]:
    row = await deps(request).pool.fetchrow(
        "SELECT * FROM printers WHERE tenant_id = $1 AND id = $2", tenant_of(request), printer_id)
    if row is None:
        raise Problem(404, f"printer {printer_id} not found")
    return record_to_dict(row)


@api.route("GET", "/printers", "List printers", response=list[PrinterOut], tags=("printers",),
           permission="printers.read")
async def list_printers(request: Request) -> list[dict[str, Any]]:
    rows = await deps(request).pool.fetch(
        "SELECT * FROM printers WHERE tenant_id = $1 ORDER BY name, id", tenant_of(request))
    return [record_to_dict(r) for r in rows]


@api.route("POST", "/printers", "Register a printer", body=PrinterIn, response=PrinterOut,
           status=201, tags=("printers",),
           permission="printers.write")
async def create_printer(request: Request, body: PrinterIn) -> dict[str, Any]:
    try:
        return await printers.create(deps(request).pool, tenant_of(request), NewPrinter(
            body.name, body.external_id, body.model, body.nozzle_diameter, body.tags,
            [m.model_dump() for m in body.materials], body.enabled))
    except PrinterExists as error:
        raise Problem(409, str(error)) from None


@api.route("GET", "/printers/{printer_id}", "Get a printer", response=PrinterOut,
           tags=("printers",),
           permission="printers.read")
async def get_printer(request: Request) -> dict[str, Any]:
    return await _owned(request, parse_id(request.path_params["printer_id"], "printer"))


@api.route("PATCH", "/printers/{printer_id}", "Change a printer", body=PrinterPatch,
           response=PrinterOut, tags=("printers",),
           permission="printers.write")
async def patch_printer(request: Request, body: PrinterPatch) -> dict[str, Any]:
    printer = await _owned(request, parse_id(request.path_params["printer_id"], "printer"))
    changes = PrinterChanges.model_validate(body.model_dump(exclude_unset=True, mode="python"))
    return await _update(request, printer, changes)


async def _update(request: Request, printer: dict[str, Any],
                  changes: PrinterChanges) -> dict[str, Any]:
    """Through the printer's entity: written, logged (printer.changed), then a dispatch try."""
    state: dict[str, Any] = await ask(request, UpdatePrinter(
        tenant_id=printer["tenant_id"], printer_id=printer["id"], changes=changes))
    return state


def _action(path: str, summary: str, changes: PrinterChanges) -> None:
    @api.route("POST", f"/printers/{{printer_id}}/{path}", summary, response=PrinterOut,
               tags=("printers",), permission="printers.operate")
    async def act(request: Request) -> dict[str, Any]:
        printer = await _owned(request, parse_id(request.path_params["printer_id"], "printer"))
        return await _update(request, printer, changes)

    act.__name__ = f"printer_{path.replace('-', '_')}"


_action("ready", "Confirm the bed is clear: the printer may take its next job",
        PrinterChanges(ready=True))
_action("enable", "Let the printer take jobs", PrinterChanges(enabled=True))
_action("disable", "Keep the printer from taking jobs (a running print continues)",
        PrinterChanges(enabled=False))
