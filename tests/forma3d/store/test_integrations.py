"""Integration rows: secrets sealed at rest, and every change leaves an event without them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid

import pytest

from forma3d.db.pool import Pool
from forma3d.integrations.errors import AuthenticationError, RejectedError
from forma3d.integrations.settings import ShopifySettings
from forma3d.store.integrations import (
    UNWATCHED_SECONDS,
    SettingsCache,
    connections,
    load_integration,
    note_failure,
    remove_integration,
    save_integration,
)
from tests.polling import eventually

pytestmark = pytest.mark.db

SHOP = ShopifySettings(shop_domain="plates.myshopify.com", access_token="shpat_secret-token",
                       webhook_secret="whsec-secret")


async def test_saving_records_the_change_and_keeps_secrets_out_of_rows_and_events(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await save_integration(db_pool, tenant_id, SHOP, changed_by="cli")
    assert await load_integration(db_pool, tenant_id, ShopifySettings) == SHOP
    row = await db_pool.fetchrow("SELECT config, secrets FROM integrations WHERE tenant_id = $1",
                                 tenant_id)
    [event] = await db_pool.fetch(
        "SELECT type, data FROM event_log WHERE tenant_id = $1", tenant_id)
    assert event["type"] == "integration.shopify-changed"
    assert event["data"] == {"connected": True, "account": "plates.myshopify.com",
                             "changed_by": "cli"}
    for stored in (json.dumps(row["config"]), row["secrets"], json.dumps(event["data"])):
        assert "shpat_secret-token" not in str(stored) and "whsec-secret" not in str(stored)


async def test_a_failed_save_records_nothing(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    async with db_pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await save_integration(conn, tenant_id, SHOP)
                raise RuntimeError("the caller's transaction fails after the save")
    assert await load_integration(db_pool, tenant_id, ShopifySettings) is None
    assert await db_pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1",
                                  tenant_id) == 0


async def test_a_watching_cache_drops_settings_as_a_change_commits(
        db_pool: Pool, database_url: str, tenant_id: uuid.UUID) -> None:
    cache = SettingsCache()
    heard = asyncio.Event()
    watcher = asyncio.create_task(cache.watch(database_url, on_listening=heard.set))
    try:
        await asyncio.wait_for(heard.wait(), 30)
        await save_integration(db_pool, tenant_id, SHOP)
        assert await cache.get(db_pool, tenant_id, ShopifySettings) == SHOP
        assert (tenant_id, "shopify") in cache.entries  # served from memory from now on
        rotated = SHOP.model_copy(update={"webhook_secret": "whsec-rotated"})
        await save_integration(db_pool, tenant_id, rotated)

        async def dropped() -> bool:
            return (tenant_id, "shopify") not in cache.entries

        await eventually(dropped, timeout=10, what="the change notice dropped the entry")
        assert await cache.get(db_pool, tenant_id, ShopifySettings) == rotated
        assert await remove_integration(db_pool, tenant_id, "shopify")
        await eventually(dropped, timeout=10, what="the disconnect dropped the entry")
        assert await cache.get(db_pool, tenant_id, ShopifySettings) is None
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def test_an_unwatched_cache_keeps_settings_only_briefly(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    cache = SettingsCache()
    await save_integration(db_pool, tenant_id, SHOP)
    await cache.get(db_pool, tenant_id, ShopifySettings)
    expires, _ = cache.entries[(tenant_id, "shopify")]
    assert expires - time.monotonic() <= UNWATCHED_SECONDS


async def test_only_a_refusal_of_the_credentials_marks_a_connection_failing(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await save_integration(db_pool, tenant_id, SHOP)
    await note_failure(db_pool, tenant_id, RejectedError("shopify", "line item is gone"))
    [row] = await connections(db_pool, tenant_id)
    assert row.last_error is None
    await note_failure(db_pool, tenant_id, AuthenticationError("shopify", "Invalid API key"))
    [row] = await connections(db_pool, tenant_id)
    assert row.last_error == "shopify: Invalid API key" and row.last_error_at is not None
    assert row.secrets == {"access_token": "…oken", "webhook_secret": "…cret"}
    await save_integration(db_pool, tenant_id, SHOP)  # new credentials clear it
    [row] = await connections(db_pool, tenant_id)
    assert row.last_error is None
