"""API keys managed over HTTP: scoped by role or permissions, listed without secrets, rotated,
revoked (refused within a second on another app instance sharing PostgreSQL and Redis, which
stands in for a second Serve replica), expired, limited to a CIDR allowlist; last_used_at
moves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key
from tests.forma3d.http.asgi import first_response
from tests.polling import settled

PROBLEM = "application/problem+json"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def replicas(db_pool: Pool, redis_url: str,
                   entities: LocalEntities) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two app instances, each with its own Redis client and caches (two replicas)."""
    clients, closers = [], []
    for _ in range(2):
        redis = aioredis.from_url(redis_url)
        app = build_app(Deps(db_pool, redis, entities=entities))
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="https://test"))
        closers.append(redis)
    yield clients
    for client, redis in zip(clients, closers, strict=True):
        await client.aclose()
        await redis.aclose()


async def test_a_key_with_a_role_can_do_what_the_role_can(api: httpx.AsyncClient,
                                                          api_key: str) -> None:
    created = await api.post("/api/v1/api-keys", headers=auth(api_key),
                             json={"name": "dashboard", "role": "viewer"})
    assert created.status_code == 201, created.text
    secret = created.json()["key"]
    assert (await api.get("/api/v1/printers", headers=auth(secret))).status_code == 200
    refused = await api.post("/api/v1/printers", headers=auth(secret), json={"name": "P"})
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "printers.write" in refused.json()["detail"]

    listed = await api.get("/api/v1/api-keys", headers=auth(api_key))
    assert listed.status_code == 200
    assert secret not in listed.text and "key_hash" not in listed.text
    mine = next(k for k in listed.json() if k["id"] == created.json()["id"])
    assert mine["role"] == "viewer" and mine["prefix"] == secret[:10]


async def test_a_key_with_permissions_and_no_escalation(api: httpx.AsyncClient,
                                                        api_key: str) -> None:
    created = await api.post("/api/v1/api-keys", headers=auth(api_key), json={
        "name": "orders bot", "permissions": ["orders.read", "api_keys.manage"]})
    assert created.status_code == 201, created.text
    bot = created.json()["key"]
    assert (await api.get("/api/v1/orders", headers=auth(bot))).status_code == 200
    assert (await api.get("/api/v1/printers", headers=auth(bot))).status_code == 403
    # It may make keys, but none holding more than it holds itself.
    wider = await api.post("/api/v1/api-keys", headers=auth(bot),
                           json={"name": "x", "role": "owner"})
    assert wider.status_code == 403 and "printers.read" in wider.json()["detail"]
    narrower = await api.post("/api/v1/api-keys", headers=auth(bot),
                              json={"name": "y", "permissions": ["orders.read"]})
    assert narrower.status_code == 201
    unknown = await api.post("/api/v1/api-keys", headers=auth(api_key),
                             json={"name": "z", "permissions": ["orders.eat"]})
    assert unknown.status_code == 422 and "orders.eat" in unknown.json()["detail"]
    both = await api.post("/api/v1/api-keys", headers=auth(api_key),
                          json={"name": "z", "role": "viewer", "permissions": []})
    assert both.status_code == 422


async def test_revoked_key_is_refused_on_every_replica_after_its_next_epoch_check(
        replicas: list[httpx.AsyncClient], api_key: str) -> None:
    one, two = replicas
    created = await one.post("/api/v1/api-keys", headers=auth(api_key),
                             json={"name": "soon gone", "role": "operator"})
    key, key_id = created.json()["key"], created.json()["id"]
    for replica in replicas:  # both have the key cached now
        assert (await replica.get("/api/v1/printers", headers=auth(key))).status_code == 200
    revoked = await one.delete(f"/api/v1/api-keys/{key_id}", headers=auth(api_key))
    assert revoked.status_code == 204
    assert (await one.get("/api/v1/printers", headers=auth(key))).status_code == 401

    async def refused() -> bool:
        return (await two.get("/api/v1/printers", headers=auth(key))).status_code == 401

    await settled(refused, what="the other replica refuses")
    again = await one.delete(f"/api/v1/api-keys/{key_id}", headers=auth(api_key))
    assert again.status_code == 404


async def test_rotation_replaces_the_secret(replicas: list[httpx.AsyncClient],
                                            api_key: str) -> None:
    one, two = replicas
    created = await one.post("/api/v1/api-keys", headers=auth(api_key),
                             json={"name": "rotating", "role": "viewer"})
    old, key_id = created.json()["key"], created.json()["id"]
    assert (await two.get("/api/v1/tenant", headers=auth(old))).status_code == 200
    rotated = await one.post(f"/api/v1/api-keys/{key_id}/rotate", headers=auth(api_key))
    assert rotated.status_code == 200 and rotated.json()["id"] == key_id
    new = rotated.json()["key"]
    assert new != old
    assert (await one.get("/api/v1/tenant", headers=auth(old))).status_code == 401
    assert (await two.get("/api/v1/tenant", headers=auth(new))).status_code == 200

    async def refused() -> bool:
        return (await two.get("/api/v1/tenant", headers=auth(old))).status_code == 401

    await settled(refused, what="the old secret refused")


async def test_expired_key_is_refused(api: httpx.AsyncClient, api_key: str, db_pool: Pool,
                                      tenant_id: uuid.UUID) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    expired = (await create_api_key(db_pool, tenant_id, "old", role="viewer",
                                    expires_at=past)).key
    response = await api.get("/api/v1/tenant", headers=auth(expired))
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    refused = await api.post("/api/v1/api-keys", headers=auth(api_key), json={
        "name": "x", "role": "viewer", "expires_at": past.isoformat()})
    assert refused.status_code == 422
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    made = await api.post("/api/v1/api-keys", headers=auth(api_key), json={
        "name": "x", "role": "viewer", "expires_at": future})
    assert made.status_code == 201 and made.json()["expires_at"]
    assert (await api.get("/api/v1/tenant", headers=auth(made.json()["key"]))).status_code == 200


async def test_key_outside_its_cidr_is_refused(app_for_keys: Starlette, db_pool: Pool,
                                               tenant_id: uuid.UUID) -> None:
    key = (await create_api_key(db_pool, tenant_id, "office", role="viewer",
                                allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"])).key
    status, _ = await first_response(app_for_keys, "GET", "/api/v1/tenant", auth(key),
                                     client="192.0.2.7")
    assert status == 403
    status, _ = await first_response(app_for_keys, "GET", "/api/v1/tenant", auth(key),
                                     client="10.20.30.40")
    assert status == 200
    status, _ = await first_response(app_for_keys, "GET", "/api/v1/tenant", auth(key),
                                     client="2001:db8::1")
    assert status == 200


async def test_cidr_must_be_a_network(api: httpx.AsyncClient, api_key: str) -> None:
    refused = await api.post("/api/v1/api-keys", headers=auth(api_key), json={
        "name": "x", "role": "viewer", "allowed_cidrs": ["not-a-network"]})
    assert refused.status_code == 422 and "CIDR" in refused.text


async def test_last_used_at_moves(app_for_keys: Starlette, db_pool: Pool,
                                  tenant_id: uuid.UUID) -> None:
    made = await create_api_key(db_pool, tenant_id, "used", role="viewer")

    async def last_used() -> datetime | None:
        found: datetime | None = await db_pool.fetchval(
            "SELECT last_used_at FROM api_keys WHERE id = $1", made.id)
        return found

    assert await last_used() is None
    status, _ = await first_response(app_for_keys, "GET", "/api/v1/tenant", auth(made.key))
    assert status == 200
    first = await last_used()
    assert first is not None
    # Throttled: the next request within the window writes nothing...
    await db_pool.execute("UPDATE api_keys SET last_used_at = '2000-01-01Z' WHERE id = $1",
                          made.id)
    await first_response(app_for_keys, "GET", "/api/v1/tenant", auth(made.key))
    assert (await last_used()) == datetime(2000, 1, 1, tzinfo=UTC)
    # ... and once it has passed, it moves again.
    app_for_keys.state.deps.auth.last_used_seconds = 0.0
    await first_response(app_for_keys, "GET", "/api/v1/tenant", auth(made.key))
    moved = await last_used()
    assert moved is not None and moved > datetime(2000, 1, 2, tzinfo=UTC)


@pytest.fixture
async def app_for_keys(db_pool: Pool, redis_url: str,
                       entities: LocalEntities) -> AsyncIterator[Starlette]:
    redis = aioredis.from_url(redis_url)
    yield build_app(Deps(db_pool, redis, entities=entities))
    await redis.aclose()
