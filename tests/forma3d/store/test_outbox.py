"""The outbox's leases: a restarted dispatcher takes over what its dead incarnation claimed."""

from __future__ import annotations

import uuid

from forma3d.db.pool import Pool
from forma3d.messaging.tenant import BackfillOrders
from forma3d.store import outbox


async def test_release_claims_makes_claimed_rows_claimable_at_once(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    message_id = uuid.uuid4()
    async with db_pool.acquire() as conn, conn.transaction():
        await outbox.send(conn, BackfillOrders(tenant_id=tenant_id), message_id=message_id)
    # As a dispatcher that claimed the row and then died would have left it.
    await db_pool.execute("UPDATE outbox SET claimed_until = now() + interval '1 hour'"
                          " WHERE message_id = $1", message_id)

    assert await outbox.release_claims(db_pool) >= 1
    row = await db_pool.fetchrow("SELECT claimed_until, done_at, available_at <= now() AS due"
                                 " FROM outbox WHERE message_id = $1", message_id)
    # What `claim` selects: pending, due, not leased (claim itself is not called here, as it
    # would lease other tests' rows too).
    assert row["claimed_until"] is None and row["done_at"] is None and row["due"]
