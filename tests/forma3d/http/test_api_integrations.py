"""Integrations by API: connect (registering our webhooks at each simulator, idempotently),
secrets write-only, disconnect, the live credential test, and a connection whose credentials
stopped working shown as failing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.integrations.connections import SHOPIFY_TOPICS, webhook_url
from forma3d.integrations.simplyprint import WEBHOOK_EVENTS
from sandbox.server import RunningSandboxes, SandboxConfig, serve_sandboxes
from sandbox.tenant import sandbox_settings

pytestmark = pytest.mark.db
PUBLIC = "https://farm.example"


@pytest.fixture
async def running() -> AsyncIterator[tuple[RunningSandboxes, SandboxConfig]]:
    config = SandboxConfig(seed=11, speedup=60)
    config.shopify.access_token = f"shpat_{uuid.uuid4().hex}"
    config.shopify.webhook_secret = f"whsec_{uuid.uuid4().hex}"
    config.simplyprint.api_key = f"sp_{uuid.uuid4().hex}"
    config.sendcloud.secret_key = f"sc_{uuid.uuid4().hex}"
    sandboxes = await serve_sandboxes(config)
    yield sandboxes, config
    await sandboxes.stop()


@pytest.fixture
async def client(db_pool: Pool, redis_url: str, database_url: str,
                 api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    local = LocalEntities(database_url)
    app = build_app(Deps(db_pool, redis, entities=local, public_url=PUBLIC))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {api_key}"}) as c:
        yield c
    await local.close()
    await redis.aclose()


def _bodies(running: tuple[RunningSandboxes, SandboxConfig]) -> dict[str, dict[str, Any]]:
    sandboxes, config = running
    return sandbox_settings(sandboxes.urls, config)


async def _connect_all(client: httpx.AsyncClient, bodies: dict[str, dict[str, Any]]) -> None:
    for service, body in bodies.items():
        response = await client.put(f"/api/v1/integrations/{service}", json=body)
        assert response.status_code == 200, response.text


async def test_connecting_registers_our_webhooks_once_and_never_answers_a_secret(
        client: httpx.AsyncClient, running: tuple[RunningSandboxes, SandboxConfig],
        tenant_id: uuid.UUID, db_pool: Pool) -> None:
    sims = running[0].sandboxes
    bodies = _bodies(running)
    await _connect_all(client, bodies)
    await _connect_all(client, bodies)  # reconnecting adds nothing
    ours = {s: webhook_url(PUBLIC, tenant_id, s) for s in bodies}
    assert sorted(h["topic"] for h in sims.shopify.subscriptions.values()
                  if h["address"] == ours["shopify"]) == sorted(SHOPIFY_TOPICS)
    [farm_hook] = [w for w in sims.simplyprint.webhooks if w.url == ours["simplyprint"]]
    assert farm_hook.enabled and farm_hook.secret == bodies["simplyprint"]["webhook_secret"]
    assert farm_hook.events == list(WEBHOOK_EVENTS)
    assert sims.sendcloud.integration["webhook_active"]
    assert sims.sendcloud.integration["webhook_url"] == ours["sendcloud"]

    listed = await client.get("/api/v1/integrations")
    assert listed.status_code == 200
    text = listed.text
    for body in bodies.values():
        for field in ("access_token", "webhook_secret", "api_key", "secret_key"):
            if body.get(field):
                assert body[field] not in text
    shop = {i["service"]: i for i in listed.json()}["shopify"]
    assert shop["state"] == "connected" and shop["account"] == bodies["shopify"]["shop_domain"]
    assert shop["secrets"]["access_token"] == "…" + bodies["shopify"]["access_token"][-4:]
    assert shop["webhooks"]["url"] == ours["shopify"]
    events = await db_pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND type = ANY($2)", tenant_id,
        ["integration.shopify-changed", "integration.simplyprint-changed",
         "integration.sendcloud-changed"])
    assert events == 6

    for service in bodies:
        gone = await client.delete(f"/api/v1/integrations/{service}")
        assert gone.status_code == 200 and gone.json()["state"] == "disconnected"
    assert not [h for h in sims.shopify.subscriptions.values() if h["address"] == ours["shopify"]]
    assert not [w for w in sims.simplyprint.webhooks if w.url == ours["simplyprint"]]
    assert not sims.sendcloud.integration["webhook_active"]
    assert {i["state"] for i in (await client.get("/api/v1/integrations")).json()} == {
        "disconnected"}
    again = await client.delete("/api/v1/integrations/shopify")
    assert again.status_code == 404


async def test_a_change_keeps_the_secrets_it_does_not_name(
        client: httpx.AsyncClient, running: tuple[RunningSandboxes, SandboxConfig],
        tenant_id: uuid.UUID, db_pool: Pool) -> None:
    await _connect_all(client, _bodies(running))
    rotated = await client.put("/api/v1/integrations/shopify",
                               json={"webhook_secret": "whsec_rotated_0001"})
    assert rotated.status_code == 200
    assert rotated.json()["secrets"]["webhook_secret"] == "…0001"
    stored = await db_pool.fetchval("SELECT config->>'shop_domain' FROM integrations"
                                    " WHERE tenant_id = $1 AND service = 'shopify'", tenant_id)
    assert stored == running[1].shopify.shop_domain


async def test_the_live_test_answers_what_the_service_said_and_a_refusal_names_it(
        client: httpx.AsyncClient, running: tuple[RunningSandboxes, SandboxConfig]) -> None:
    await _connect_all(client, _bodies(running))
    for service in ("shopify", "simplyprint", "sendcloud"):
        ok = await client.post(f"/api/v1/integrations/{service}/test")
        assert ok.status_code == 200 and ok.json()["ok"], ok.text
    assert "Forma3D Sandbox" in (await client.post("/api/v1/integrations/shopify/test")
                                 ).json()["message"]

    running[1].shopify.access_token = "shpat_revoked_by_the_merchant"  # the app was reinstalled
    refused = await client.post("/api/v1/integrations/shopify/test")
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"].startswith("Shopify refused: [API] Invalid API key")
    shop = (await client.get("/api/v1/integrations/shopify")).json()
    assert shop["state"] == "failing" and "Invalid API key" in shop["last_error"]

    running[1].sendcloud.secret_key = "wrong"
    refused = await client.post("/api/v1/integrations/sendcloud/test")
    assert refused.status_code == 422 and refused.json()["detail"].startswith(
        "Sendcloud refused:")


async def test_wrong_credentials_or_bad_values_connect_nothing(
        client: httpx.AsyncClient, running: tuple[RunningSandboxes, SandboxConfig],
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    bodies = _bodies(running)
    wrong = await client.put("/api/v1/integrations/shopify",
                             json={**bodies["shopify"], "access_token": "shpat_wrong"})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("Shopify refused")
    bad = await client.put("/api/v1/integrations/simplyprint",
                           json={**bodies["simplyprint"], "company_id": "many"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["company_id"]
    missing = await client.put("/api/v1/integrations/sendcloud", json={"public_key": "x"})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"secret_key"}
    unknown = await client.put("/api/v1/integrations/shopify",
                               json={**bodies["shopify"], "password": "x"})
    assert unknown.status_code == 422
    assert await db_pool.fetchval("SELECT count(*) FROM integrations WHERE tenant_id = $1",
                                  tenant_id) == 0
    assert json.loads((await client.get("/api/v1/openapi.json")).text)["paths"][
        "/api/v1/integrations/shopify"]["put"]["requestBody"]
