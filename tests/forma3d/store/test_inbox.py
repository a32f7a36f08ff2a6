"""The webhook inbox: one row per delivery key, read while unprocessed, marked once done."""

from __future__ import annotations

import asyncio
import uuid

from forma3d.db.pool import Pool
from forma3d.messaging.tenant import ShopifyWebhook
from forma3d.store import inbox
from forma3d.store.tenants import create_tenant


async def test_a_delivery_is_stored_once_per_key(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    async with db_pool.acquire() as conn, conn.transaction():
        first = await inbox.store(conn, tenant_id, "shopify", "orders/create:1", "orders/create",
                                  {"x-shopify-topic": "orders/create"}, b'{"id": 1}')
        replay = await inbox.store(conn, tenant_id, "shopify", "orders/create:1",
                                   "orders/create", {}, b'{"id": 1}')
        other_source = await inbox.store(conn, tenant_id, "sendcloud", "orders/create:1",
                                         "orders/create", {}, b"{}")
    assert first is not None and replay is None and other_source not in (None, first)
    delivery = await inbox.unprocessed(db_pool, tenant_id, first)
    assert delivery is not None
    assert (delivery.source, delivery.topic, delivery.body) == ("shopify", "orders/create",
                                                               b'{"id": 1}')
    assert delivery.processed_at is None and delivery.error is None


async def test_a_processed_delivery_is_not_read_again(db_pool: Pool,
                                                      tenant_id: uuid.UUID) -> None:
    async with db_pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, tenant_id, "simplyprint", "job.done:pj_1:1",
                                     "job.done", {}, b"{}")
    assert inbox_id is not None
    await inbox.mark_processed(db_pool, tenant_id, inbox_id, "not one of our jobs")
    assert await inbox.unprocessed(db_pool, tenant_id, inbox_id) is None
    row = await db_pool.fetchrow("SELECT processed_at, error FROM webhook_inbox WHERE id = $1",
                                 inbox_id)
    assert row["processed_at"] is not None and row["error"] == "not one of our jobs"


async def test_tenants_never_see_each_others_deliveries(db_pool: Pool,
                                                        tenant_id: uuid.UUID) -> None:
    other = await create_tenant(db_pool, f"t-{uuid.uuid4().hex[:12]}")
    async with db_pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, tenant_id, "shopify", "k", "orders/create", {}, b"{}")
    assert inbox_id is not None
    assert await inbox.unprocessed(db_pool, other, inbox_id) is None
    await inbox.mark_processed(db_pool, other, inbox_id, "not yours")
    assert await inbox.unprocessed(db_pool, tenant_id, inbox_id) is not None


def _arrival(tenant_id: uuid.UUID, key: str, headers: dict[str, str] | None = None,
             ) -> inbox.Arrival:
    return inbox.Arrival(tenant_id, "shopify", key, "orders/create", headers or {}, b"{}",
                         lambda inbox_id: ShopifyWebhook(tenant_id=tenant_id, inbox_id=inbox_id))


async def test_group_commit_answers_each_delivery_after_one_shared_commit(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    writer = inbox.GroupCommit(db_pool, window=0.05)
    keys = [f"k{i}" for i in range(20)] + ["k3"]  # a replay inside the same batch
    ids = await asyncio.gather(*(writer.accept(_arrival(tenant_id, k)) for k in keys))
    assert None not in ids[:20] and len(set(ids[:20])) == 20 and ids[20] is None
    messages = await db_pool.fetch("SELECT payload FROM outbox WHERE tenant_id = $1", tenant_id)
    assert sorted(m["payload"]["inbox_id"] for m in messages) == sorted(ids[:20])
    # One transaction: every row carries the same transaction id.
    assert await db_pool.fetchval("SELECT count(DISTINCT xmin::text) FROM webhook_inbox"
                                  " WHERE tenant_id = $1", tenant_id) == 1
    assert await writer.accept(_arrival(tenant_id, "k5")) is None  # replay of a stored key


async def test_a_row_that_cannot_be_stored_fails_only_itself(db_pool: Pool,
                                                             tenant_id: uuid.UUID) -> None:
    writer = inbox.GroupCommit(db_pool, window=0.05)
    results = await asyncio.gather(
        writer.accept(_arrival(tenant_id, "good-1")),
        writer.accept(_arrival(tenant_id, "bad", {"x-shopify-topic": "a\x00b"})),  # jsonb: NUL
        writer.accept(_arrival(tenant_id, "good-2")), return_exceptions=True)
    assert isinstance(results[0], int) and isinstance(results[2], int)
    assert isinstance(results[1], Exception)
    assert await db_pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1",
                                  tenant_id) == 2
