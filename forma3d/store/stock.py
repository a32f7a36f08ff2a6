"""Stock: the immutable ledger of stock movements per SKU and the level they add up to."""

from __future__ import annotations

import uuid

from forma3d.db.pool import Connection


async def adjust(conn: Connection, tenant_id: uuid.UUID, sku: str, delta: int, *,
                 transaction_type: str = "ADJUSTED", reason: str | None = None,
                 message_id: uuid.UUID | None = None) -> int:
    """Apply a signed change as one ledger entry and return the new level.

    The level row is updated first so concurrent movements serialise on it; a level below zero
    raises ValueError before the ledger entry is written, and the caller's transaction rolls the
    level back.
    """
    if delta == 0:
        raise ValueError("stock.adjust quantity must not be zero")
    level: int = await conn.fetchval(
        """INSERT INTO stock_levels (tenant_id, sku, quantity) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, sku) DO UPDATE
           SET quantity = stock_levels.quantity + EXCLUDED.quantity, updated_at = now()
           RETURNING quantity""",
        tenant_id, sku, delta,
    )
    if level < 0:
        raise ValueError(f"stock of {sku} would go negative ({level})")
    await conn.execute(
        """INSERT INTO stock_ledger
               (tenant_id, sku, transaction_type, direction, quantity, reason, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        tenant_id, sku, transaction_type, "IN" if delta > 0 else "OUT", abs(delta), reason,
        message_id,
    )
    return level
