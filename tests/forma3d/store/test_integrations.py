"""Integration rows: secrets sealed at rest, and every change leaves an event without them."""

from __future__ import annotations

import json
import uuid

import pytest

from forma3d.db.pool import Pool
from forma3d.integrations.settings import ShopifySettings
from forma3d.store.integrations import load_integration, save_integration

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
