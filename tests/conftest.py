"""Test tiers: pure tests need nothing; `db_pool`/`redis_url` start (or attach to) real servers;
`ray_cluster` starts one local Ray cluster per session with entity hosts on top."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, settings

from actors.runtime import Runtime
from forma3d.db.migrations import migrate
from forma3d.db.pool import Pool, create_pool
from forma3d.platform.embedded import Services, start_services
from forma3d.store.tenants import create_tenant
from tests.stack import farm, ingress, sandbox  # noqa: F401  (fixtures for the whole tree)

RAY_HOSTS = 2
E2E = Path(__file__).resolve().parent / "e2e"
# Property tests assert behaviour, never speed: no per-example deadline (a wall-clock assertion
# that fails on a loaded machine) and no health check on slow data generation.
settings.register_profile("forma3d", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("forma3d")
# Integration secrets are sealed with this key; Ray workers inherit it from the environment.
os.environ.setdefault("FORMA3D_SECRET_KEY", Fernet.generate_key().decode())


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """PostgreSQL and Redis: DATABASE_URL / REDIS_URL if set, else embedded servers in a fresh
    directory, so concurrent test sessions never share a database (or its outbox)."""
    configured = os.environ.get("FORMA3D_TEST_DATA_DIR")
    data_dir = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="forma3d-test-"))
    started = start_services(
        os.environ.get("DATABASE_URL") or None, os.environ.get("REDIS_URL") or None, data_dir
    )
    yield started
    started.stop()
    if not configured:
        shutil.rmtree(data_dir, ignore_errors=True)


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


@pytest.fixture(scope="session")
def ray_runtime(database_url: str, redis_url: str, db_pool: Pool) -> Iterator[Runtime]:
    """One local Ray cluster per test session (2 CPUs, no dashboard, small object store)."""
    import ray

    from actors.runtime import start_runtime, stop_runtime
    from forma3d.stack import RAY_START_ENVIRONMENT, start_ray

    # As `scripts/up` starts it: a node gets 30 s to register, which a loaded machine misses;
    # a failed start is cleaned up and tried again.
    for name, value in RAY_START_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    start_ray(lambda: ray.init(address="local", num_cpus=2, include_dashboard=False,
                               namespace="forma3d", object_store_memory=200 * 2**20,
                               log_to_driver=False))
    runtime = start_runtime(database_url, RAY_HOSTS, idle_seconds=300, ask_timeout=30,
                            reconcile_seconds=2, backfill_seconds=3600,
                            env={"FORMA3D_SECRET_KEY": os.environ["FORMA3D_SECRET_KEY"],
                                 "REDIS_URL": redis_url})
    yield runtime
    stop_runtime(RAY_HOSTS)
    ray.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tiers in order: pure and PostgreSQL/Redis tests first, Ray tests last.

    Once the session's Ray runtime is up, its outbox dispatcher delivers every pending message in
    the database; database-tier tests that look at freshly enqueued state run before that.
    """
    def needs_ray(item: pytest.Item) -> bool:
        return "ray_runtime" in getattr(item, "fixturenames", ()) or bool(
            item.get_closest_marker("ray"))

    for item in items:
        # Whole flows on the sandbox farm: the slow tier (scripts/test-slow), see the README.
        if E2E in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
    items.sort(key=needs_ray)
