"""Outgoing webhook subscriptions over HTTP: the secret shown once and sealed at rest, targets
refused with problem+json (private, loopback, plain http, unknown events), the delivery
history and redelivery."""

from __future__ import annotations

import uuid

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.domain.events import EventType
from forma3d.http.routes.api import api as router
from forma3d.store.events import record

pytestmark = pytest.mark.db
PROBLEM = "application/problem+json"
BASE = "/api/v1/webhook-subscriptions"
PUBLIC = "https://93.184.216.34/forma3d"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(("url", "says"), [
    ("https://10.0.0.7/hook", "private address 10.0.0.7"),
    ("https://169.254.169.254/latest/meta-data", "private address 169.254.169.254"),
    ("https://[fd12::1]/hook", "private address fd12::1"),
    ("http://127.0.0.1:8265/api", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("http://93.184.216.34/hook", "must be https"),
    ("https://user:pw@93.184.216.34/hook", "credentials"),
    ("https://no-such-host.invalid/hook", "does not resolve"),
])
async def test_a_subscription_to_a_forbidden_target_is_refused(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID,
        url: str, says: str) -> None:
    response = await api.post(BASE, json={"url": url, "event_types": ["order.created"]},
                              headers=auth(api_key))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert says in body["detail"] and body["errors"][0]["field"] == "url"
    assert await db_pool.fetchval(
        "SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = $1", tenant_id) == 0


async def test_private_targets_only_where_the_tenant_allows_them(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await db_pool.execute("UPDATE tenants SET settings = $2 WHERE id = $1", tenant_id,
                          {"webhooks_allow_private": True})
    ok = await api.post(BASE, json={"url": "https://10.0.0.7/hook", "event_types": ["*"]},
                        headers=auth(api_key))
    assert ok.status_code == 201, ok.text
    plain = await api.post(BASE, json={"url": "http://10.0.0.7/hook", "event_types": ["*"]},
                           headers=auth(api_key))
    assert plain.status_code == 422 and "https" in plain.json()["detail"]


async def test_subscription_lifecycle_secret_once_and_sealed(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    unknown = await api.post(BASE, json={"url": PUBLIC, "event_types": ["order.exploded"]},
                             headers=auth(api_key))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "event_types"

    created = await api.post(BASE, json={"url": PUBLIC, "description": "n8n",
                                         "event_types": ["order.created", "order.shipped"]},
                             headers=auth(api_key))
    assert created.status_code == 201, created.text
    body = created.json()
    secret, subscription_id = body["secret"], body["id"]
    assert secret.startswith("whsec_") and body["enabled"] is True
    stored = await db_pool.fetchval("SELECT secret FROM webhook_subscriptions WHERE id = $1",
                                    uuid.UUID(subscription_id))
    assert secret.encode() not in stored and secret[6:].encode() not in stored  # sealed

    got = await api.get(f"{BASE}/{subscription_id}", headers=auth(api_key))
    assert got.status_code == 200 and "secret" not in got.json()
    listed = await api.get(BASE, params={"enabled": "true"}, headers=auth(api_key))
    assert [s["id"] for s in listed.json()] == [subscription_id]
    assert "secret" not in listed.json()[0]
    types = await api.get("/api/v1/webhook-event-types", headers=auth(api_key))
    assert {"order.created", "order.printing", "order.shipped", "order.delivered",
            "order.cancelled", "order.ready-for-fulfillment"} <= set(types.json())

    off = await api.patch(f"{BASE}/{subscription_id}", json={"enabled": False},
                          headers=auth(api_key))
    assert off.status_code == 200 and off.json()["enabled"] is False
    moved = await api.patch(f"{BASE}/{subscription_id}", json={"url": "https://10.9.9.9/x"},
                            headers=auth(api_key))
    assert moved.status_code == 422 and moved.headers["content-type"] == PROBLEM
    null = await api.patch(f"{BASE}/{subscription_id}", json={"url": None},
                           headers=auth(api_key))
    assert null.status_code == 422

    other = await api.get(f"{BASE}/{uuid.uuid4()}", headers=auth(api_key))
    assert other.status_code == 404 and other.headers["content-type"] == PROBLEM
    gone = await api.delete(f"{BASE}/{subscription_id}", headers=auth(api_key))
    assert gone.status_code == 204
    assert (await api.get(f"{BASE}/{subscription_id}", headers=auth(api_key))).status_code == 404


async def test_delivery_history_and_redelivery(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    created = await api.post(BASE, json={"url": PUBLIC, "event_types": ["printer.changed"]},
                             headers=auth(api_key))
    subscription_id = created.json()["id"]
    async with db_pool.acquire() as conn, conn.transaction():
        event_id = await record(conn, EventType.PRINTER_CHANGED, tenant_id, {
            "printer_id": "p1", "after": {"state": "idle"}}, subject=("printer", "p1"))
    await db_pool.execute("UPDATE webhook_subscriptions SET enabled = false WHERE id = $1",
                          uuid.UUID(subscription_id))
    history = await api.get(f"{BASE}/{subscription_id}/deliveries", headers=auth(api_key))
    assert history.status_code == 200, history.text
    [delivery] = history.json()
    assert (delivery["event_id"], delivery["event_type"], delivery["status"]) == (
        str(event_id), "printer.changed", "PENDING")
    assert delivery["payload"]["data"]["after"] == {"state": "idle"}

    again = await api.post(f"{BASE}/{subscription_id}/deliveries/{delivery['id']}/redeliver",
                           headers=auth(api_key))
    assert again.status_code == 202, again.text
    assert again.json()["redelivery_of"] == delivery["id"]
    assert again.json()["event_id"] == str(event_id)
    searched = await api.post(f"{BASE}/{subscription_id}/deliveries/search",
                              json={"filter": {"redelivery_of": delivery["id"]}},
                              headers=auth(api_key))
    assert [d["id"] for d in searched.json()] == [again.json()["id"]]
    missing = await api.post(f"{BASE}/{subscription_id}/deliveries/{uuid.uuid4()}/redeliver",
                             headers=auth(api_key))
    assert missing.status_code == 404
    elsewhere = await api.get(f"{BASE}/{uuid.uuid4()}/deliveries", headers=auth(api_key))
    assert elsewhere.status_code == 404


def test_routes_declare_the_webhook_permissions() -> None:
    found = {(e.method, e.path): e.permission for e in router.endpoints
             if e.path.startswith(("/webhook-subscriptions", "/webhook-event-types"))}
    assert found and all(
        permission == ("webhook_subscriptions.read" if method == "GET" or path.endswith("/search")
                       else "webhook_subscriptions.write")
        for (method, path), permission in found.items())
