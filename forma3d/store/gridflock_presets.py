"""GridFlock presets in PostgreSQL: one row per tenant and name, written by the API directly
(tenant configuration, like the integrations), each change with its event."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from forma3d.db.pool import Connection, Pool, transaction
from forma3d.domain.events import EventType
from forma3d.domain.gridflock.presets import Preset, PresetSpec
from forma3d.store.events import record

_COLUMNS = ("printer_profile", "magnets", "magnet_diameter_mm", "magnet_depth_mm", "connector",
            "margin_mm", "brim_mm", "filament")


class PresetExists(ValueError):
    """A preset of that name exists already."""


class StoredPreset(Preset):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


def _of(row: asyncpg.Record) -> StoredPreset:
    values: dict[str, Any] = dict(row)
    values.pop("tenant_id", None)
    return StoredPreset.model_validate(
        {k: float(v) if isinstance(v, Decimal) else v for k, v in values.items()})


def _values(spec: PresetSpec) -> list[Any]:
    data = spec.model_dump(mode="json")
    return [data[c] for c in _COLUMNS]


async def list_presets(db: Pool | Connection, tenant_id: uuid.UUID) -> list[StoredPreset]:
    rows = await db.fetch("SELECT * FROM gridflock_presets WHERE tenant_id = $1 ORDER BY name",
                          tenant_id)
    return [_of(r) for r in rows]


async def find_preset(db: Pool | Connection, tenant_id: uuid.UUID,
                      name: str) -> StoredPreset | None:
    row = await db.fetchrow("SELECT * FROM gridflock_presets WHERE tenant_id = $1 AND name = $2",
                            tenant_id, name.lower())
    return None if row is None else _of(row)


async def preset_names(db: Pool | Connection, tenant_id: uuid.UUID) -> list[str]:
    rows = await db.fetch("SELECT name FROM gridflock_presets WHERE tenant_id = $1 ORDER BY name",
                          tenant_id)
    return [r["name"] for r in rows]


async def create_preset(db: Pool | Connection, tenant_id: uuid.UUID,
                        preset: Preset) -> StoredPreset:
    async with transaction(db) as conn:
        row = await conn.fetchrow(
            f"""INSERT INTO gridflock_presets (id, tenant_id, name, {", ".join(_COLUMNS)})
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (tenant_id, name) DO NOTHING RETURNING *""",
            uuid.uuid4(), tenant_id, preset.name, *_values(preset))
        if row is None:
            raise PresetExists(f"GridFlock preset {preset.name!r} exists already")
        await _changed(conn, tenant_id, preset.name, "created")
        return _of(row)


async def replace_preset(db: Pool | Connection, tenant_id: uuid.UUID, name: str,
                         spec: PresetSpec) -> StoredPreset | None:
    """The preset with every choice replaced; None when there is no preset of that name."""
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(_COLUMNS, start=3))
    async with transaction(db) as conn:
        row = await conn.fetchrow(
            f"""UPDATE gridflock_presets SET {sets}, updated_at = now()
                WHERE tenant_id = $1 AND name = $2 RETURNING *""",
            tenant_id, name, *_values(spec))
        if row is None:
            return None
        await _changed(conn, tenant_id, name, "replaced")
        return _of(row)


async def delete_preset(db: Pool | Connection, tenant_id: uuid.UUID, name: str) -> bool:
    async with transaction(db) as conn:
        gone = await conn.fetchval(
            "DELETE FROM gridflock_presets WHERE tenant_id = $1 AND name = $2 RETURNING id",
            tenant_id, name)
        if gone is None:
            return False
        await _changed(conn, tenant_id, name, "deleted")
        return True


async def _changed(conn: Connection, tenant_id: uuid.UUID, name: str, action: str) -> None:
    await record(conn, EventType.GRIDFLOCK_PRESET_CHANGED, tenant_id,
                 {"name": name, "action": action}, subject=("gridflock_preset", name))
