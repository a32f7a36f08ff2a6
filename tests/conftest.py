"""Test tiers: pure tests need nothing; `db_pool`/`redis_url` start (or attach to) real servers;
`ray_cluster` starts one local Ray cluster per session with entity hosts on top."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from forma3d.db.migrate import migrate
from forma3d.db.pool import Pool, create_pool
from forma3d.platform.embedded import Services, start_services
from forma3d.platform.tenants import create_tenant

DATA_DIR = Path(os.environ.get("FORMA3D_TEST_DATA_DIR", ".forma3d/test"))


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """PostgreSQL and Redis: DATABASE_URL / REDIS_URL if set, embedded servers otherwise."""
    started = start_services(
        os.environ.get("DATABASE_URL") or None, os.environ.get("REDIS_URL") or None, DATA_DIR
    )
    yield started
    started.stop()


@pytest.fixture(scope="session")
def database_url(services: Services) -> str:
    return services.database_url


@pytest.fixture(scope="session")
def redis_url(services: Services) -> str:
    return services.redis_url


@pytest.fixture(scope="session")
async def db_pool(database_url: str) -> AsyncIterator[Pool]:
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=8)
    yield pool
    await pool.close()


@pytest.fixture
async def tenant_id(db_pool: Pool) -> uuid.UUID:
    """A fresh tenant per test: tests stay isolated the way tenants are."""
    return await create_tenant(db_pool, f"t-{uuid.uuid4().hex[:12]}")
