"""Printers: rows, operator and farm changes with their printer.changed events.

A printer's row is written by its own entity (operator commands, what the farm reports, the
start and end of its jobs), by the HTTP API when an operator registers one, and by its tenant's
fleet entity when the farm sync first sees it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.events import EventType
from forma3d.store.events import record

# Columns a change may write: the operator's (messaging.printer.PrinterChanges) and what the
# system keeps (the live state, the job on the printer); never ids, version or timestamps of rows.
COLUMNS = frozenset({
    "name", "model", "nozzle_diameter", "state", "online", "enabled", "ready", "tags",
    "materials", "external_id", "auto_ready", "farm_printer_id", "current_job_id",
    "farm_job_uid", "state_changed_at", "offline_since"})


class PrinterExists(ValueError):
    """Another printer of the tenant has this external id."""


@dataclass(frozen=True)
class NewPrinter:
    """An operator's printer, registered over the HTTP API."""

    name: str
    external_id: str | None = None
    model: str | None = None
    nozzle_diameter: Decimal | None = None
    tags: list[str] = field(default_factory=list)
    materials: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = True


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime | Decimal):
        return str(value)
    return value


async def get(db: Pool | Connection, printer_id: uuid.UUID) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT * FROM printers WHERE id = $1", printer_id)
    return record_to_dict(row) if row else None


async def change(conn: Connection, printer: Mapping[str, Any], changes: Mapping[str, Any],
                 source: str) -> dict[str, Any]:
    """Write `changes` to the printer and log them (printer.changed, values before and after);
    returns the new row. Nothing is written (and the row is returned) when `changes` is empty."""
    stray = set(changes) - COLUMNS
    if stray:
        raise ValueError(f"printers: {sorted(stray)} are not changeable columns")
    if not changes:
        return dict(printer)
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE printers SET {sets}, version = version + 1, updated_at = now()"
        " WHERE id = $1 RETURNING *", printer["id"], *changes.values())
    if row is None:
        raise LookupError(f"printer {printer['id']} does not exist")
    await record(conn, EventType.PRINTER_CHANGED, printer["tenant_id"], {
        "printer_id": str(printer["id"]), "source": source,
        "before": {k: _jsonable(printer.get(k)) for k in changes},
        "after": {k: _jsonable(v) for k, v in changes.items()}},
        subject=("printer", printer["id"]))
    return record_to_dict(row)


async def create(db: Pool | Connection, tenant_id: uuid.UUID,
                 printer: NewPrinter) -> dict[str, Any]:
    """A new printer row; PrinterExists if its external id is taken."""
    try:
        row = await db.fetchrow(
            """INSERT INTO printers (id, tenant_id, name, external_id, model, nozzle_diameter,
                                     tags, materials, enabled)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *""",
            uuid.uuid4(), tenant_id, printer.name, printer.external_id, printer.model,
            printer.nozzle_diameter, printer.tags, printer.materials, printer.enabled)
    except asyncpg.UniqueViolationError:
        raise PrinterExists(f"a printer with external_id {printer.external_id!r} exists") from None
    return record_to_dict(row)


async def register_farm_printers(db: Pool | Connection, tenant_id: uuid.UUID,
                                 names: Mapping[int, str]) -> dict[int, uuid.UUID]:
    """Our printer id for every farm printer (farm id -> name), its row created on first sight."""
    farm_ids = list(names)
    await db.executemany(
        """INSERT INTO printers (id, tenant_id, name, external_id, farm_printer_id)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, farm_printer_id) DO NOTHING""",
        [(uuid.uuid4(), tenant_id, names[f] or f"printer {f}", str(f), f) for f in farm_ids])
    rows = await db.fetch("SELECT id, farm_printer_id FROM printers"
                          " WHERE tenant_id = $1 AND farm_printer_id = ANY($2)",
                          tenant_id, farm_ids)
    return {r["farm_printer_id"]: r["id"] for r in rows}
