"""PrinterActor: one per printer; its memory is the printer's row, written through on change."""

from __future__ import annotations

import uuid
from typing import Any

from actors.entity import Entity, command, query
from actors.message import Envelope
from forma3d.db.pool import Connection, record_to_dict

# Fields an update may change; everything else is owned by the system.
UPDATABLE = ("name", "model", "nozzle_diameter", "state", "online", "enabled", "ready", "tags",
             "materials", "external_id")


class PrinterActor(Entity):
    kind = "printer"

    async def activate(self) -> None:
        row = await self.ctx.pool.fetchrow("SELECT * FROM printers WHERE id = $1",
                                           uuid.UUID(self.key))
        if row is None:
            raise LookupError(f"printer {self.key} does not exist")
        self.state: dict[str, Any] = record_to_dict(row)

    @query("printer.get")
    async def get(self, envelope: Envelope) -> dict[str, Any]:
        return dict(self.state)

    @command("printer.update")
    async def update(self, envelope: Envelope, conn: Connection) -> dict[str, Any]:
        changes = {k: v for k, v in envelope.payload.items() if k in UPDATABLE}
        unknown = set(envelope.payload) - set(UPDATABLE)
        if unknown:
            raise ValueError(f"printer.update cannot change {sorted(unknown)}")
        if not changes:
            return dict(self.state)
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
        row = await conn.fetchrow(
            f"UPDATE printers SET {sets}, version = version + 1, updated_at = now()"
            " WHERE id = $1 RETURNING *",
            uuid.UUID(self.key), *changes.values(),
        )
        self.state = record_to_dict(row)
        return dict(self.state)
