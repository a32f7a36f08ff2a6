"""The whole flow on loopback: sandboxes (Shopify, SimplyPrint, Sendcloud) as real HTTP servers,
our ingress app as a real HTTP server, and the entity runtime on the session's Ray cluster.

Fixtures for the end-to-end tier (tests/e2e) and the browser tests (tests/dashboard); the root
conftest registers them once for the whole tree."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn

from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from sandbox.farm import PrinterSpec
from sandbox.server import RunningSandboxes, SandboxConfig, serve_sandboxes
from sandbox.shopify import LineItemSpec, OrderSpec
from sandbox.tenant import connect_tenant, seed_catalog
from tests.polling import started

SPEEDUP = 3600.0  # one simulated hour of printing per real second


@pytest.fixture(scope="session")
async def ingress(db_pool: Pool, redis_url: str, ray_runtime: Runtime) -> AsyncIterator[str]:
    """Our Starlette app on a loopback port, as the sandboxes' webhooks need a real URL."""
    redis = aioredis.from_url(redis_url)
    app = build_app(Deps(db_pool, redis, ray_runtime))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    port = await started(server, task)
    # The simulators deliver only to the webhooks registered at them, which connecting a tenant
    # through the API registers here.
    app.state.deps.public_url = f"http://127.0.0.1:{port}"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await redis.aclose()


@dataclass
class Farm:
    """One tenant wired to its own sandboxes, with helpers to drive and observe the flow."""

    tenant_id: uuid.UUID
    pool: Pool
    sandboxes: RunningSandboxes
    parts_per_unit: dict[str, int]
    ingress: str = ""  # our API's base URL and an operator key, where an ingress runs
    api_key: str = ""

    @property
    def shopify(self) -> Any:
        return self.sandboxes.sandboxes.shopify

    def send_order(self, lines: Iterable[tuple[str, int]]) -> int:
        order = self.shopify.create_order(OrderSpec(line_items=[
            LineItemSpec(sku=sku, quantity=qty) for sku, qty in lines]))
        return int(order["id"])

    async def control(self, service: str, path: str, body: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(f"{self.sandboxes.urls[service]}/_sandbox/{path}",
                                         json=body)
            response.raise_for_status()

    async def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        """An operator's request to our REST API (`/api/v1` + path) with the tenant's key."""
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.request(method, f"{self.ingress}/api/v1{path}", json=body,
                                        headers={"Authorization": f"Bearer {self.api_key}"})

    async def statuses(self) -> dict[int, str]:
        rows = await self.pool.fetch(
            "SELECT shopify_order_id, status FROM orders WHERE tenant_id = $1", self.tenant_id)
        return {r["shopify_order_id"]: r["status"] for r in rows}

    async def wait(self, orders: Iterable[int], done: set[str], timeout: float = 120) -> dict[
            int, str]:
        wanted = set(orders)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            statuses = await self.statuses()
            if all(statuses.get(o) in done for o in wanted):
                return {o: statuses[o] for o in wanted}
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"orders not {done} in {timeout}s: "
                                     f"{ {o: statuses.get(o) for o in wanted} }")
            await asyncio.sleep(0.2)


async def connect(db_pool: Pool, ingress: str, tenant_id: uuid.UUID, running: RunningSandboxes,
                  config: SandboxConfig, sendcloud_api: Literal["v2", "v3"] = "v3") -> str:
    """An operator key for the tenant, and its three integrations connected with it through
    the REST API (registering our webhooks at each simulator); returns the key."""
    key = (await create_api_key(db_pool, tenant_id, "operator")).key
    await connect_tenant(ingress, key, running.urls, config, sendcloud_api)
    return key


def sandbox_config(**farm: Any) -> SandboxConfig:
    config = SandboxConfig(seed=7, speedup=SPEEDUP)
    config.sendcloud.status_interval = 600
    config.simplyprint.printers = [PrinterSpec(name=f"MK4 #{i}", model="MK4") for i in range(6)]
    for key, value in farm.items():
        setattr(config.simplyprint, key, value)
    return config


@pytest.fixture
def sandbox() -> SandboxConfig:
    """The farm fixture's sandbox settings; a test module may override this fixture."""
    return sandbox_config()


@pytest.fixture
async def farm(db_pool: Pool, ingress: str, sandbox: SandboxConfig) -> AsyncIterator[Farm]:
    config = sandbox
    running = await serve_sandboxes(config)
    tenant_id = await create_tenant(db_pool, f"e2e-{uuid.uuid4().hex[:10]}")
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    key = await connect(db_pool, ingress, tenant_id, running, config)
    yield Farm(tenant_id, db_pool, running, parts, ingress, key)
    # The shop leaves with its sandboxes: its integrations are switched off, so reconciliation
    # and redeliveries for it stop calling farms that are gone (and crowding later tests).
    await db_pool.execute("UPDATE integrations SET enabled = false WHERE tenant_id = $1",
                          tenant_id)
    await running.stop()
