from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key


@pytest.fixture
async def entities(database_url: str) -> AsyncIterator[LocalEntities]:
    """The entities in this process (no Ray); what they tell each other is only recorded."""
    local = LocalEntities(database_url)
    yield local
    await local.close()


@pytest.fixture
async def api(db_pool: Pool, redis_url: str,
              entities: LocalEntities) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (no Serve, no Ray); writes are asked of in-process entities."""
    redis = aioredis.from_url(redis_url)
    app = build_app(Deps(db_pool, redis, entities=entities))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await redis.aclose()


@pytest.fixture
async def api_key(db_pool: Pool, tenant_id: uuid.UUID) -> str:
    return (await create_api_key(db_pool, tenant_id, "test")).key
