"""A stored delivery whose processing fails is never silent: a dead letter with its reason and
an event, listed through the query language and retried through the tenant entity."""

from __future__ import annotations

import json
import uuid

import httpx

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.messaging.tenant import FarmWebhook, SendcloudWebhook, ShopifyWebhook
from forma3d.store import inbox
from forma3d.store.tenants import create_tenant
from tests.forma3d.http.test_webhooks import ORDER


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _stored(db_pool: Pool, tenant_id: uuid.UUID, source: str, topic: str,
                  body: bytes) -> int:
    """A delivery as an earlier ingress stored it, before the checks it would now fail."""
    async with db_pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, tenant_id, source, str(uuid.uuid4()), topic, {}, body)
    assert inbox_id is not None
    return inbox_id


async def _events(db_pool: Pool, tenant_id: uuid.UUID, kind: str) -> list[dict[str, object]]:
    rows = await db_pool.fetch("SELECT data FROM event_log WHERE tenant_id = $1 AND type = $2"
                               " ORDER BY occurred_at", tenant_id, kind)
    return [r["data"] for r in rows]


async def test_a_failing_delivery_is_a_listed_retryable_dead_letter(
        api: httpx.AsyncClient, db_pool: Pool, entities: LocalEntities, tenant_id: uuid.UUID,
        api_key: str) -> None:
    bad = await _stored(db_pool, tenant_id, "shopify", "orders/create",
                        json.dumps({**ORDER, "id": 2**63}).encode())
    assert await entities.call(ShopifyWebhook(tenant_id=tenant_id, inbox_id=bad)) == "dead letter"
    row = await db_pool.fetchrow("SELECT * FROM webhook_inbox WHERE id = $1", bad)
    assert row["dead_lettered_at"] is not None and row["attempts"] == 1
    assert "id" in row["error"] and row["error"].startswith("ValidationError")
    [event] = await _events(db_pool, tenant_id, "webhook.dead-lettered")
    assert event["inbox_id"] == bad and event["source"] == "shopify"
    assert event["reason"] == row["error"]
    # Processing it again (a redelivered message) changes nothing: it waits for an operator.
    assert await entities.call(ShopifyWebhook(tenant_id=tenant_id, inbox_id=bad)) \
        == "already processed"

    listed = await api.get("/api/v1/webhooks/dead-letters?source=shopify&meta=true",
                           headers=auth(api_key))
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["total"] == 1 and page["data"][0]["id"] == bad
    assert page["data"][0]["reason"] == row["error"] and page["data"][0]["attempts"] == 1
    none = await api.get("/api/v1/webhooks/dead-letters?source=sendcloud",
                         headers=auth(api_key))
    assert none.json() == []
    one = await api.get(f"/api/v1/webhooks/dead-letters/{bad}", headers=auth(api_key))
    assert one.status_code == 200 and one.json()["topic"] == "orders/create"

    retried = await api.post(f"/api/v1/webhooks/dead-letters/{bad}/retry",
                             headers=auth(api_key))
    assert retried.status_code == 202, retried.text
    assert retried.json() == {"id": bad, "status": "retrying"}
    assert (await api.get("/api/v1/webhooks/dead-letters",
                          headers=auth(api_key))).json() == []
    message = await db_pool.fetchrow(
        "SELECT * FROM outbox WHERE tenant_id = $1 AND message_type = 'shopify.webhook'",
        tenant_id)
    assert message is not None and message["payload"]["inbox_id"] == bad
    assert [e["inbox_id"] for e in await _events(db_pool, tenant_id, "webhook.retried")] == [bad]
    # Still broken: a dead letter again, with the attempt counted.
    assert await entities.call(ShopifyWebhook(tenant_id=tenant_id, inbox_id=bad)) == "dead letter"
    assert await db_pool.fetchval("SELECT attempts FROM webhook_inbox WHERE id = $1", bad) == 2
    assert len(await _events(db_pool, tenant_id, "webhook.dead-lettered")) == 2
    assert await db_pool.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1",
                                  tenant_id) == 0


async def test_a_retried_dead_letter_whose_cause_is_gone_is_processed(
        api: httpx.AsyncClient, db_pool: Pool, entities: LocalEntities, tenant_id: uuid.UUID,
        api_key: str) -> None:
    good = await _stored(db_pool, tenant_id, "shopify", "orders/create",
                         json.dumps(ORDER).encode())
    async with db_pool.acquire() as conn, conn.transaction():  # failed once, for a fixed bug
        assert await inbox.dead_letter(conn, tenant_id, good, "RuntimeError: since fixed")
    response = await api.post(f"/api/v1/webhooks/dead-letters/{good}/retry",
                              headers=auth(api_key))
    assert response.status_code == 202
    assert await entities.call(ShopifyWebhook(tenant_id=tenant_id, inbox_id=good)) == "created"
    row = await db_pool.fetchrow("SELECT * FROM webhook_inbox WHERE id = $1", good)
    assert row["processed_at"] is not None and row["dead_lettered_at"] is None
    assert row["error"] is None
    assert await db_pool.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1",
                                  tenant_id) == 1


async def test_farm_and_parcel_deliveries_that_fail_are_dead_letters(
        db_pool: Pool, entities: LocalEntities, tenant_id: uuid.UUID) -> None:
    farm = await _stored(db_pool, tenant_id, "simplyprint", "job.done", json.dumps(
        {"event": "job.done", "timestamp": 1, "data": {"job": {"printer_id": "x"}}}).encode())
    parcel = await _stored(db_pool, tenant_id, "sendcloud", "parcel_status_changed",
                           json.dumps({"action": "parcel_status_changed",
                                       "parcel": "not an object"}).encode())
    assert await entities.call(FarmWebhook(tenant_id=tenant_id, inbox_id=farm)) == "dead letter"
    assert await entities.call(SendcloudWebhook(tenant_id=tenant_id, inbox_id=parcel)) \
        == "dead letter"
    reasons = {e["source"]: e["reason"]
               for e in await _events(db_pool, tenant_id, "webhook.dead-lettered")}
    assert set(reasons) == {"simplyprint", "sendcloud"}
    assert "printer_id" in str(reasons["simplyprint"]) and "parcel" in str(reasons["sendcloud"])
    assert await inbox.dead_letter_count(db_pool, tenant_id) == 2


async def test_retry_of_what_is_not_a_dead_letter_is_404(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID, api_key: str) -> None:
    other = await create_tenant(db_pool, f"t-{uuid.uuid4().hex[:12]}")
    theirs = await _stored(db_pool, other, "shopify", "orders/create", b"{}")
    async with db_pool.acquire() as conn, conn.transaction():
        await inbox.dead_letter(conn, other, theirs, "ValueError: theirs")
    waiting = await _stored(db_pool, tenant_id, "shopify", "orders/create", b"{}")
    for inbox_id in (theirs, waiting, "abc", str(2**64)):
        response = await api.post(f"/api/v1/webhooks/dead-letters/{inbox_id}/retry",
                                  headers=auth(api_key))
        assert response.status_code == 404, (inbox_id, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await api.get(f"/api/v1/webhooks/dead-letters/{theirs}",
                          headers=auth(api_key))).status_code == 404
