"""Serve's limits on our ingress deployment: past `max_ongoing_requests` in flight and
`max_queued_requests` waiting, a webhook is answered 503 at once (Shopify and Sendcloud retry
it), and every delivery that was answered 200 is stored and processed: nothing accepted is lost.

The deployment is the product's own `forma3d.serving.Api`, deployed on the session's Ray cluster
through Serve's HTTP proxy with its limits lowered to one in flight and one waiting, so a handful
of requests passes them (the product's 256 and 2,048 would need thousands in flight at once). A
lock on the webhook inbox keeps the one request in flight for as long as the test needs."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.integrations.connections import webhook_url
from forma3d.integrations.settings import ShopifySettings
from forma3d.integrations.signatures import SHOPIFY_HMAC_HEADER, shopify_signature
from forma3d.serving import MAX_ONGOING_REQUESTS, MAX_QUEUED_REQUESTS, Api
from forma3d.store.integrations import save_integration
from forma3d.store.tenants import create_tenant
from tests.conftest import RAY_HOSTS
from tests.e2e.test_connect_shop import free_port
from tests.polling import eventually

pytestmark = pytest.mark.timeout(900)
SECRET = "whsec-backpressure"
FLOOD = 12


@pytest.fixture
def serve_base(database_url: str, redis_url: str, ray_runtime: Runtime) -> Iterator[str]:
    """The product's ingress deployment behind Serve's proxy, one in flight and one waiting."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "FORMA3D_SECRET_KEY": os.environ["FORMA3D_SECRET_KEY"],
           "FORMA3D_ENTITY_HOSTS": str(RAY_HOSTS)}
    tight = Api.options(  # type: ignore[attr-defined]
        num_replicas=1, max_ongoing_requests=1, max_queued_requests=1,
        ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": env}})
    try:
        serve.run(tight.bind(), name="backpressure", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()


def test_the_product_deploys_with_the_limits_it_states() -> None:
    assert (Api.max_ongoing_requests, Api.max_queued_requests) == (
        MAX_ONGOING_REQUESTS, MAX_QUEUED_REQUESTS)
    assert MAX_QUEUED_REQUESTS > 0  # -1 would be an unbounded queue: never a 503


async def test_past_the_limits_webhooks_are_503_and_nothing_accepted_is_lost(
        db_pool: Pool, serve_base: str) -> None:
    tenant_id = await create_tenant(db_pool, f"bp-{uuid.uuid4().hex[:10]}")
    await save_integration(db_pool, tenant_id, ShopifySettings(
        shop_domain="bp.myshopify.com", access_token="shpat-bp", webhook_secret=SECRET))
    url = webhook_url(serve_base, str(tenant_id), "shopify")

    async def deliver(client: httpx.AsyncClient, key: str) -> int:
        """One signed Shopify delivery (a topic stored and marked, not turned into an order)."""
        body = json.dumps({"id": uuid.UUID(key).int % 10**12, "name": "shop"}).encode()
        response = await client.post(url, content=body, headers={
            "Content-Type": "application/json", "X-Shopify-Topic": "shop/update",
            "X-Shopify-Webhook-Id": key, SHOPIFY_HMAC_HEADER: shopify_signature(SECRET, body)})
        return response.status_code

    async def stored() -> dict[str, bool]:
        rows = await db_pool.fetch("SELECT delivery_key, processed_at IS NOT NULL AS done"
                                   " FROM webhook_inbox WHERE tenant_id = $1", tenant_id)
        # The inbox keys a Shopify delivery by its topic and webhook id.
        return {r["delivery_key"].removeprefix("shop/update:"): r["done"] for r in rows}

    async with httpx.AsyncClient(timeout=120) as client:
        # The replica is up and answers (its first request waits for the app's start-up).
        warm = str(uuid.uuid4())
        assert await deliver(client, warm) == 200

        async with db_pool.acquire() as blocker:
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE webhook_inbox IN SHARE MODE")
            first_key = str(uuid.uuid4())
            first = asyncio.create_task(deliver(client, first_key))

            async def held() -> bool:  # the one request in flight waits for the lock
                waiting = await db_pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE $1 = ANY(pg_blocking_pids(pid))", blocker.get_server_pid())
                return bool(waiting)

            await eventually(held, timeout=120, what="the first delivery in flight")
            keys = [str(uuid.uuid4()) for _ in range(FLOOD)]
            flood = [asyncio.create_task(deliver(client, key)) for key in keys]

            async def answered_at_once() -> int:  # all but the one waiting in the queue
                done = sum(task.done() for task in flood)
                return done if done >= FLOOD - 1 else 0

            await eventually(answered_at_once, timeout=120,
                             what="the flood answered while the lock is held")
            early = [task.result() for task in flood if task.done()]
            assert early == [503] * len(early), early
            assert not first.done()
            await lock.rollback()  # the lock is gone: what waits goes through
        statuses = dict(zip(keys, await asyncio.gather(*flood), strict=True))
        assert await first == 200
        refused = [k for k, s in statuses.items() if s == 503]
        accepted = [k for k, s in statuses.items() if s == 200]
        assert len(refused) >= FLOOD - 1 and len(accepted) + len(refused) == FLOOD, statuses

        # Every delivery answered 200 is stored and processed; none refused was stored.
        async def all_processed() -> dict[str, bool] | None:
            found = await stored()
            return found if found and all(found.values()) else None

        found = await eventually(all_processed, timeout=120, what="accepted deliveries done")
        assert set(found) == {warm, first_key, *accepted}

        # Shopify redelivers what was refused; with the queue free again, each is accepted.
        for key in refused:
            assert await deliver(client, key) == 200
        found = await eventually(all_processed, timeout=120, what="redeliveries done")
        assert set(found) == {warm, first_key, *keys}
