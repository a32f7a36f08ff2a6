"""TenantActor: one per tenant; owns the tenant's settings and its stock ledger."""

from __future__ import annotations

import uuid
from typing import Any

from actors.entity import Entity, command, query
from actors.message import Envelope
from forma3d.db.pool import Connection, record_to_dict


class TenantActor(Entity):
    kind = "tenant"

    async def activate(self) -> None:
        row = await self.ctx.pool.fetchrow("SELECT * FROM tenants WHERE id = $1",
                                           uuid.UUID(self.key))
        if row is None:
            raise LookupError(f"tenant {self.key} does not exist")
        self.state: dict[str, Any] = record_to_dict(row)

    @query("tenant.get")
    async def get(self, envelope: Envelope) -> dict[str, Any]:
        return dict(self.state)

    @command("stock.adjust")
    async def adjust_stock(self, envelope: Envelope, conn: Connection) -> int:
        """Apply a signed stock change as an immutable ledger entry; returns the new level."""
        sku = str(envelope.payload["sku"])
        delta = int(envelope.payload["quantity"])
        kind = str(envelope.payload.get("transaction_type", "ADJUSTED"))
        if delta == 0:
            raise ValueError("stock.adjust quantity must not be zero")
        level: int = await conn.fetchval(
            """INSERT INTO stock_levels (tenant_id, sku, quantity) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id, sku) DO UPDATE
               SET quantity = stock_levels.quantity + EXCLUDED.quantity, updated_at = now()
               RETURNING quantity""",
            self.state["id"], sku, delta,
        )
        if level < 0:
            raise ValueError(f"stock of {sku} would go negative ({level})")
        await conn.execute(
            """INSERT INTO stock_ledger
                   (tenant_id, sku, transaction_type, direction, quantity, reason, message_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            self.state["id"], sku, kind, "IN" if delta > 0 else "OUT", abs(delta),
            envelope.payload.get("reason"), uuid.UUID(envelope.message_id),
        )
        return level
