"""A new shop on day one, as its owner would do it: the three services (simulators in a process
of their own, with credentials nobody has used before), a tenant and an API key made with the
CLI, the three integrations connected only through the REST API, our webhooks registered at
each service, an order placed at the shop fulfilled with tracking, and the Shopify webhook
secret rotated through the API taking effect on every API replica within a second."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from actors.runtime import Runtime
from forma3d.config import load_settings
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.integrations.connections import SHOPIFY_TOPICS, webhook_url
from forma3d.integrations.signatures import SHOPIFY_HMAC_HEADER, shopify_signature
from forma3d.integrations.simplyprint import WEBHOOK_EVENTS
from sandbox.farm import PrinterSpec
from sandbox.server import SandboxConfig
from sandbox.tenant import connect_tenant, seed_catalog
from tests.conftest import RAY_HOSTS
from tests.polling import eventually, settled, started

pytestmark = pytest.mark.ray
REPLICAS = 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def fresh_config() -> SandboxConfig:
    """Simulated accounts with credentials made for this run only."""
    config = SandboxConfig(seed=uuid.uuid4().int % 2**31, speedup=3600.0)
    config.shopify_port, config.simplyprint_port, config.sendcloud_port = (
        free_port(), free_port(), free_port())
    config.shopify.shop_domain = f"farm-{uuid.uuid4().hex[:8]}.myshopify.com"
    config.shopify.access_token = f"shpat_{uuid.uuid4().hex}"
    config.shopify.webhook_secret = uuid.uuid4().hex
    config.simplyprint.company_id = 4000 + uuid.uuid4().int % 1000
    config.simplyprint.api_key = uuid.uuid4().hex
    config.simplyprint.webhook_secret = uuid.uuid4().hex
    config.simplyprint.printers = [PrinterSpec(name=f"MK4 #{i}", model="MK4") for i in range(4)]
    config.sendcloud.public_key = uuid.uuid4().hex
    config.sendcloud.secret_key = uuid.uuid4().hex
    config.sendcloud.status_interval = 600
    return config


@contextlib.asynccontextmanager
async def simulators(config: SandboxConfig, tmp: Path) -> AsyncIterator[dict[str, str]]:
    """`python -m sandbox.server` in its own process; the three base URLs once they answer."""
    path = tmp / "sandbox.json"
    path.write_text(config.model_dump_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox.server", "--config", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    urls = {name: f"http://127.0.0.1:{getattr(config, f'{name}_port')}"
            for name in ("shopify", "simplyprint", "sendcloud")}
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            async def answering() -> bool:
                assert proc.returncode is None, "the simulators' process stopped"
                try:
                    for url in urls.values():
                        (await client.get(f"{url}/_sandbox/clock")).raise_for_status()
                except httpx.HTTPError:
                    return False
                return True

            await eventually(answering, timeout=60, interval=0.2, what="simulators answer")
        yield urls
    finally:
        proc.terminate()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(proc.wait(), 20)


async def cli(*args: str, database_url: str, data_dir: Path) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "redis://unused:1/0",
           "FORMA3D_DATA_DIR": str(data_dir)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forma3d.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


@contextlib.asynccontextmanager
async def replicas(database_url: str, redis_url: str, ports: list[int],
                   public_url: str) -> AsyncIterator[list[str]]:
    """API replicas as a Serve replica builds them (its own pool, settings cache and change
    listener, from the settings), on loopback ports."""
    config = load_settings({**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                            "FORMA3D_PUBLIC_URL": public_url,
                            "FORMA3D_ENTITY_HOSTS": str(RAY_HOSTS)})
    servers, tasks = [], []
    try:
        for port in ports:
            server = uvicorn.Server(uvicorn.Config(
                build_app(config=config), host="127.0.0.1", port=port, log_level="warning",
                lifespan="on", access_log=False))
            servers.append(server)
            tasks.append(asyncio.create_task(server.serve()))
            await started(server, tasks[-1])
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for server in servers:
            server.should_exit = True
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def shopify_webhook(client: httpx.AsyncClient, replica: str, tenant_id: str,
                          secret: str) -> int:
    """A signed Shopify delivery (a topic stored, not processed) to one replica; its status."""
    body = json.dumps({"id": uuid.uuid4().int % 10**12, "name": "shop"}).encode()
    response = await client.post(webhook_url(replica, tenant_id, "shopify"), content=body,
                                 headers={"Content-Type": "application/json",
                                          "X-Shopify-Topic": "shop/update",
                                          "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                                          SHOPIFY_HMAC_HEADER: shopify_signature(secret, body)})
    return response.status_code


async def test_a_new_shop_connects_by_api_and_ships_its_first_order(
        db_pool: Pool, database_url: str, redis_url: str, ray_runtime: Runtime,
        tmp_path: Path) -> None:
    config = fresh_config()
    ports = [free_port() for _ in range(REPLICAS)]
    public = f"http://127.0.0.1:{ports[0]}"  # where the services reach us
    async with simulators(config, tmp_path) as urls, \
            replicas(database_url, redis_url, ports, public) as apis, \
            httpx.AsyncClient(timeout=30) as client:
        slug = f"shop-{uuid.uuid4().hex[:8]}"
        tenant = await cli("tenant", "create", slug, database_url=database_url,
                           data_dir=tmp_path)
        tenant_id = await db_pool.fetchval("SELECT id FROM tenants WHERE slug = $1", slug)
        assert str(tenant_id) in tenant
        key = (await cli("apikey", "create", "--tenant", slug, database_url=database_url,
                         data_dir=tmp_path)).strip()
        async with db_pool.acquire() as conn:
            await seed_catalog(conn, tenant_id)

        answers = await connect_tenant(apis[1], key, urls, config)  # any replica will do
        assert {a["state"] for a in answers.values()} == {"connected"}
        ours = {s: webhook_url(public, tenant_id, s) for s in urls}

        # Registered at each service, as the service itself lists them.
        shop = f"{urls['shopify']}/admin/api/2024-07"
        token = {"X-Shopify-Access-Token": config.shopify.access_token}
        hooks = (await client.get(f"{shop}/webhooks.json", headers=token)).json()["webhooks"]
        assert sorted(h["topic"] for h in hooks if h["address"] == ours["shopify"]) == sorted(
            SHOPIFY_TOPICS)
        sp = f"{urls['simplyprint']}/{config.simplyprint.company_id}"
        farm_hooks = (await client.get(f"{sp}/webhooks/Get", headers={
            "X-API-KEY": config.simplyprint.api_key})).json()["data"]
        [farm_hook] = [h for h in farm_hooks if h["url"] == ours["simplyprint"]]
        assert farm_hook["enabled"] and set(farm_hook["events"]) == set(WEBHOOK_EVENTS)
        [integration] = (await client.get(f"{urls['sendcloud']}/api/v3/integrations", auth=(
            config.sendcloud.public_key, config.sendcloud.secret_key))).json()["data"]
        assert integration["webhook_active"] and integration["webhook_url"] == ours["sendcloud"]

        # The first order, placed at the shop, reaches us only through the registered webhook.
        placed = (await client.post(f"{urls['shopify']}/_sandbox/orders", json={
            "line_items": [{"sku": "BENCHY-PLA-RED", "quantity": 1},
                           {"sku": "VASE-SPIRAL-PLA-WHITE", "quantity": 1}]})).json()["order"]

        async def fulfilled() -> Any:
            return await db_pool.fetchrow(
                "SELECT o.status, s.tracking_number, s.shopify_fulfillment_id FROM orders o"
                " JOIN shipments s ON s.order_id = o.id WHERE o.tenant_id = $1"
                " AND o.shopify_order_id = $2 AND o.status = 'FULFILLED'",
                tenant_id, placed["id"])

        done = await eventually(fulfilled, timeout=180, interval=0.3, what="order FULFILLED")
        at_shop = (await client.get(f"{shop}/orders/{placed['id']}.json", headers=token)).json()
        [fulfillment] = at_shop["order"]["fulfillments"]
        assert done["tracking_number"] and fulfillment["tracking_number"] == done[
            "tracking_number"]
        assert at_shop["order"]["fulfillment_status"] == "fulfilled"

        # Every replica has the current secret in memory ...
        old = config.shopify.webhook_secret
        for api in apis:
            assert await shopify_webhook(client, api, str(tenant_id), old) == 200
        # ... and the secret rotated through the API takes over on all of them within 1 s.
        new = uuid.uuid4().hex
        rotated = await client.put(f"{apis[1]}/api/v1/integrations/shopify",
                                   json={"webhook_secret": new},
                                   headers={"Authorization": f"Bearer {key}"})
        assert rotated.status_code == 200 and rotated.json()["secrets"]["webhook_secret"] == (
            "…" + new[-4:])
        for api in apis:
            async def switched(api: str = api) -> bool:
                return (await shopify_webhook(client, api, str(tenant_id), new) == 200
                        and await shopify_webhook(client, api, str(tenant_id), old) == 401)

            await settled(switched, what=f"rotated secret in force at {api}")
        for api in apis:  # and it stays that way
            assert await shopify_webhook(client, api, str(tenant_id), old) == 401
            assert await shopify_webhook(client, api, str(tenant_id), new) == 200
