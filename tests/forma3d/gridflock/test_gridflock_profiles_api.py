"""GET /gridflock/profiles in-process: every printer profile, the tenant's default one and its
accepted drawer sizes (what the dashboard's drawer form offers before any preview)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from forma3d.db.pool import Pool
from forma3d.domain.gridflock.profiles import PROFILES
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key

pytestmark = pytest.mark.db


@pytest.fixture
async def client(db_pool: Pool, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    transport = httpx.ASGITransport(app=build_app(Deps(db_pool, redis)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as http:
        yield http
    await redis.aclose()


async def test_profiles_follow_the_tenants_settings(client: httpx.AsyncClient, db_pool: Pool,
                                                    tenant_id: uuid.UUID) -> None:
    key = (await create_api_key(db_pool, tenant_id, "viewer", role="viewer")).key
    headers = {"Authorization": f"Bearer {key}"}
    r = await client.get("/gridflock/profiles", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["id"] for p in body["profiles"]] == list(PROFILES)
    mk4 = next(p for p in body["profiles"] if p["id"] == "prusa-mk4")
    assert (mk4["code"], mk4["bed_x_mm"], mk4["bed_y_mm"]) == ("MK4", 250.0, 210.0)
    assert (body["default_profile"], body["min_mm"], body["max_mm"]) == ("bambu-a1", 100, 1000)
    assert body["connectors"] == ["puzzle", "none"]

    await db_pool.execute("UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2"
                          " WHERE id = $1", tenant_id,
                          {"gridflock_printer_profile": "MK4", "gridflock_max_mm": 600})
    body = (await client.get("/gridflock/profiles", headers=headers)).json()
    assert (body["default_profile"], body["max_mm"]) == ("prusa-mk4", 600)


async def test_profiles_need_a_caller(client: httpx.AsyncClient) -> None:
    assert (await client.get("/gridflock/profiles")).status_code == 401
