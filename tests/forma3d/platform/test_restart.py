"""What `scripts/up` keeps across a restart: the embedded PostgreSQL's data and the secret key
created in the data directory, so a tenant and its sealed integration are there again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from forma3d.db.migrations import migrate
from forma3d.db.pool import create_pool
from forma3d.integrations.settings import ShopifySettings
from forma3d.platform.embedded import start_services
from forma3d.platform.secrets import KEY_ENV, load_or_create_key
from forma3d.store.integrations import load_integration, save_integration
from forma3d.store.tenants import create_tenant

pytestmark = pytest.mark.db
SETTINGS = ShopifySettings(shop_domain="kept.myshopify.com", access_token="shpat-kept",
                           webhook_secret="whsec-kept")


def up(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key as the stack gets it with none configured: the data directory's key file."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_ENV, load_or_create_key(data_dir))


async def write(database_url: str) -> uuid.UUID:
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        tenant_id = await create_tenant(pool, f"kept-{uuid.uuid4().hex[:8]}")
        await save_integration(pool, tenant_id, SETTINGS)
    finally:
        await pool.close()
    return tenant_id


async def read(database_url: str, tenant_id: uuid.UUID) -> tuple[str, ShopifySettings | None]:
    await migrate(database_url)  # a second start migrates again: nothing to do, nothing lost
    connection = await asyncpg.connect(database_url)
    try:
        slug = await connection.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant_id)
    finally:
        await connection.close()
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        return slug, await load_integration(pool, tenant_id, ShopifySettings)
    finally:
        await pool.close()


def test_data_and_sealed_secrets_survive_a_restart(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    up(tmp_path, monkeypatch)
    first = start_services(None, None, tmp_path)
    try:
        tenant_id = asyncio.run(write(first.database_url))
    finally:
        first.stop()
    key = (tmp_path / "secret.key").read_text()

    up(tmp_path, monkeypatch)
    assert (tmp_path / "secret.key").read_text() == key  # the same key, not a new one
    second = start_services(None, None, tmp_path)
    try:
        slug, settings = asyncio.run(read(second.database_url, tenant_id))
    finally:
        second.stop()
    assert slug is not None and slug.startswith("kept-")
    assert settings == SETTINGS
