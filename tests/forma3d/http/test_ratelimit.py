"""Rate limits: per API key and per user from the tenant's settings, per client address before
authentication, and the tenant's own ceiling on inbound provider webhooks; 429 problem+json
with Retry-After and RateLimit-* headers at the threshold, and recovery after it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from starlette.applications import Starlette

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.domain.tenants import TenantSettings
from forma3d.http.app import build_app
from forma3d.http.auth import SESSION_COOKIE, hash_password
from forma3d.http.deps import Deps
from forma3d.http.problems import Problem
from forma3d.http.ratelimit import AddressLimits
from forma3d.store.apikeys import create_api_key
from forma3d.store.users import create_user
from tests.forma3d.http.asgi import first_response
from tests.polling import eventually

PROBLEM = "application/problem+json"


@pytest.fixture
async def deps(db_pool: Pool, redis_url: str,
               entities: LocalEntities) -> AsyncIterator[Deps]:
    redis = aioredis.from_url(redis_url)
    yield Deps(db_pool, redis, entities=entities)
    await redis.aclose()


@pytest.fixture
def app(deps: Deps) -> Starlette:
    return build_app(deps)


async def settle(db_pool: Pool, tenant_id: uuid.UUID, **limits: Any) -> None:
    await db_pool.execute("UPDATE tenants SET settings = settings || $2 WHERE id = $1",
                          tenant_id, limits)


async def test_key_limit_answers_429_then_recovers(app: Starlette, db_pool: Pool,
                                                   tenant_id: uuid.UUID) -> None:
    await settle(db_pool, tenant_id, api_requests_per_second=3, api_requests_per_minute=1000)
    key = (await create_api_key(db_pool, tenant_id, "busy", role="viewer")).key
    headers = {"Authorization": f"Bearer {key}"}
    answers = [await first_response(app, "GET", "/api/v1/tenant", headers) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert answers[0][1]["ratelimit-limit"] == "3"
    assert [int(h["ratelimit-remaining"]) for _, h in answers] == [2, 1, 0]

    status, over = await first_response(app, "GET", "/api/v1/tenant", headers)
    assert status == 429 and over["content-type"] == PROBLEM
    assert int(over["retry-after"]) >= 1 and over["ratelimit-remaining"] == "0"

    # Another key of the same tenant has its own bucket.
    other = (await create_api_key(db_pool, tenant_id, "calm", role="viewer")).key
    assert (await first_response(app, "GET", "/api/v1/tenant",
                                 {"Authorization": f"Bearer {other}"}))[0] == 200

    async def recovered() -> bool:
        return (await first_response(app, "GET", "/api/v1/tenant", headers))[0] == 200

    await eventually(recovered, timeout=5, interval=0.25, what="the window moved on")


async def test_address_limit_counts_before_authentication(deps: Deps, app: Starlette) -> None:
    deps.limits.address = AddressLimits(per_second=1000, per_minute=2)
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    guesses = [await first_response(app, "GET", "/api/v1/tenant",
                                    {"Authorization": "Bearer f3d_guess"}, client=address)
               for _ in range(3)]
    assert [status for status, _ in guesses] == [401, 401, 429]
    assert int(guesses[2][1]["retry-after"]) >= 1
    elsewhere = await first_response(app, "GET", "/api/v1/tenant",
                                     {"Authorization": "Bearer f3d_guess"}, client="192.0.2.1")
    assert elsewhere[0] == 401


async def test_webhooks_have_their_own_tenant_ceiling(app: Starlette, db_pool: Pool,
                                                      tenant_id: uuid.UUID) -> None:
    await settle(db_pool, tenant_id, webhook_requests_per_second=2,
                 api_requests_per_second=1)
    path = f"/webhooks/{tenant_id}/shopify"
    statuses = [(await first_response(app, "POST", path, {}, b"{}"))[0] for _ in range(3)]
    # Unsigned (no Shopify integration): refused, but counted; the third is over the ceiling.
    assert statuses == [401, 401, 429]
    status, headers = await first_response(app, "POST", path, {}, b"{}")
    assert status == 429 and int(headers["retry-after"]) >= 1
    # Another tenant's webhooks are not held back.
    other = uuid.uuid4()
    assert (await first_response(app, "POST", f"/webhooks/{other}/shopify", {}, b"{}"))[0] == 401

    async def recovered() -> bool:
        return (await first_response(app, "POST", path, {}, b"{}"))[0] == 401

    await eventually(recovered, timeout=5, interval=0.25, what="the webhook window moved on")


async def test_user_limit_follows_the_signed_in_user(app: Starlette, db_pool: Pool,
                                                     tenant_id: uuid.UUID) -> None:
    await settle(db_pool, tenant_id, api_requests_per_second=1000, api_requests_per_minute=2)
    slug = await db_pool.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant_id)
    await create_user(db_pool, tenant_id, "rl@example.com", "RL", "viewer",
                      await hash_password("a long enough password"))
    body = json.dumps({"tenant": slug, "email": "rl@example.com",
                       "password": "a long enough password"}).encode()
    status, headers = await first_response(app, "POST", "/api/v1/session", {}, body)
    assert status == 201
    cookie = next(line.split(";")[0] for line in headers["set-cookie"].splitlines()
                  if line.startswith(SESSION_COOKIE + "="))
    statuses = [(await first_response(app, "GET", "/api/v1/session", {"Cookie": cookie}))[0]
                for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_webhook_permits_come_from_redis_in_blocks_that_never_pass_the_ceiling(
        deps: Deps) -> None:
    """A replica takes the ceiling's permits in blocks (1/64 of it), one Redis call each; near
    the ceiling it takes them one by one, and past it the webhook is refused."""
    tenant = uuid.uuid4().hex
    settings = TenantSettings(webhook_requests_per_second=6400)
    item = RateLimitItemPerSecond(6400)
    who = f"webhooks:{tenant}"

    async def taken() -> int:
        stats = await deps.limits._get().get_window_stats(item, who)
        return 6400 - stats.remaining

    for _ in range(50):
        await deps.limits.check_webhooks(tenant, settings)
    used = await taken()  # whole blocks of 100, one per lease (a lease lasts under a second)
    assert used % 100 == 0 and 100 <= used <= 5000
    # A burst of concurrent webhooks waits for one lease at a time instead of each taking one.
    await asyncio.gather(*(deps.limits.check_webhooks(tenant, settings) for _ in range(300)))
    assert await taken() - used <= 400  # 300 permits, in blocks of 100 (a partial one left)

    # Another replica (its own limiter) finds the window nearly full: single permits, then 429.
    other = Deps(deps.pool, deps.redis, entities=deps.entities)
    assert await deps.limits._get().hit(item, who, cost=6400 - await taken() - 3)
    refused = 0
    for _ in range(8):
        try:
            await other.limits.check_webhooks(tenant, settings)
        except Problem as problem:
            assert problem.status == 429
            refused += 1
    assert refused >= 5 and await taken() <= 6400
