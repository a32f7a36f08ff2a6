"""The tenant's operator handlers without Ray, called directly against PostgreSQL (and the
in-process SimplyPrint simulator): settings checked as a whole, a dead-lettered webhook sent back
to processing, and stock jobs submitted to SimplyPrint's own queue only in that dispatch mode."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from forma3d.db.pool import Connection, Pool
from forma3d.handlers import stock as stock_handlers
from forma3d.handlers import tenant as handlers
from forma3d.handlers.tenant import Tenant
from forma3d.handlers.testing import stub_services
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.refusals import Invalid, NotFound
from forma3d.messaging.stock import CreateStockBatch, SubmitStockJobs
from forma3d.messaging.tenant import RetryDeadLetter, ShopifyWebhook, UpdateTenantSettings
from forma3d.store import inbox, stock_batches
from forma3d.store.integrations import load_integration, save_integration
from forma3d.store.tenants import tenant_settings
from sandbox.server import serve_sandboxes
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config

pytestmark = pytest.mark.db


@pytest.fixture
async def tenant(db_pool: Pool, tenant_id: uuid.UUID) -> Tenant:
    services, _ = stub_services(db_pool)
    return await handlers.load(services, str(tenant_id))


async def command(pool: Pool, fn: Callable[[Any, Any, Connection], Awaitable[Any]],
                  state: Any, message: Any) -> Any:
    """A command handler run the way the host runs it: in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        return await fn(state, message, conn)


async def settings_events(pool: Pool, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT data FROM event_log WHERE tenant_id = $1"
                            " AND type = 'tenant.settings-changed' ORDER BY id", tenant_id)
    return [r["data"] for r in rows]


async def test_settings_change_as_a_whole_with_one_event_per_change(
        db_pool: Pool, tenant: Tenant) -> None:
    answer = await command(db_pool, handlers.update_settings, tenant, UpdateTenantSettings(
        tenant_id=tenant.tenant_id, changes={"max_print_attempts": 4,
                                             "cancel_printing_jobs": False}, by="ops"))
    assert (answer["max_print_attempts"], answer["cancel_printing_jobs"]) == (4, False)
    async with db_pool.acquire() as conn:
        stored = await tenant_settings(conn, tenant.tenant_id)
    assert (stored.max_print_attempts, stored.cancel_printing_jobs) == (4, False)
    [event] = await settings_events(db_pool, tenant.tenant_id)
    assert event["after"] == {"max_print_attempts": 4, "cancel_printing_jobs": False}
    assert event["changed_by"] == "ops"

    # The same values again change nothing and record nothing.
    await command(db_pool, handlers.update_settings, tenant, UpdateTenantSettings(
        tenant_id=tenant.tenant_id, changes={"max_print_attempts": 4}))
    assert len(await settings_events(db_pool, tenant.tenant_id)) == 1

    # One bad value refuses the whole change, naming its field; the good one is not kept.
    with pytest.raises(Invalid, match="max_print_attempts"):
        await command(db_pool, handlers.update_settings, tenant, UpdateTenantSettings(
            tenant_id=tenant.tenant_id, changes={"packaging_grams": 999,
                                                 "max_print_attempts": 0}))
    async with db_pool.acquire() as conn:
        after = await tenant_settings(conn, tenant.tenant_id)
    assert after == stored
    assert len(await settings_events(db_pool, tenant.tenant_id)) == 1


async def test_a_dead_letter_goes_back_to_processing_once(db_pool: Pool, tenant: Tenant) -> None:
    async with db_pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, tenant.tenant_id, "shopify", str(uuid.uuid4()),
                                     "orders/create", {}, json.dumps({"id": 1}).encode())
        assert inbox_id is not None
        assert await inbox.dead_letter(conn, tenant.tenant_id, inbox_id, "refused by a bug")
    before = await db_pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1",
                                    tenant.tenant_id)

    answer = await command(db_pool, handlers.retry_dead_letter, tenant,
                           RetryDeadLetter(tenant_id=tenant.tenant_id, inbox_id=inbox_id))
    assert answer == {"id": inbox_id, "status": "retrying"}
    row = await db_pool.fetchrow("SELECT processed_at, dead_lettered_at, error"
                                 " FROM webhook_inbox WHERE id = $1", inbox_id)
    assert tuple(row.values()) == (None, None, None)
    sent = await db_pool.fetch("SELECT message_type, payload FROM outbox WHERE tenant_id = $1"
                               " ORDER BY id OFFSET $2", tenant.tenant_id, before)
    assert [(r["message_type"], r["payload"]["inbox_id"]) for r in sent] == [
        (ShopifyWebhook.type, inbox_id)]
    assert await db_pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND type = 'webhook.retried'",
        tenant.tenant_id) == 1

    # No longer a dead letter (nor is a delivery that never was one): nothing to retry.
    for missing in (inbox_id, inbox_id + 10**9):
        with pytest.raises(NotFound):
            await command(db_pool, handlers.retry_dead_letter, tenant,
                          RetryDeadLetter(tenant_id=tenant.tenant_id, inbox_id=missing))
    assert await db_pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1",
                                  tenant.tenant_id) == before + 1


@pytest.fixture
async def shop(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    config = sandbox_config(auto_print=False)
    running = await serve_sandboxes(config)
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config)  # SimplyPrint's queue
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


async def test_stock_jobs_go_to_simplyprints_queue_once_and_never_under_smart_dispatch(
        shop: Farm, tenant: Tenant) -> None:
    farm = shop.sandboxes.sandboxes.simplyprint.farm
    submit = SubmitStockJobs(tenant_id=shop.tenant_id)
    sp = await load_integration(shop.pool, shop.tenant_id, SimplyPrintSettings)
    assert sp is not None and sp.dispatch_mode == "simplyprint_queue"
    assert await stock_handlers.submit(tenant, submit) == 0  # nothing queued yet

    mapping_id = await shop.pool.fetchval(
        "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2",
        shop.tenant_id, "VASE-SPIRAL-PLA-WHITE")
    batch_id = await command(shop.pool, stock_handlers.create_batch, tenant, CreateStockBatch(
        tenant_id=shop.tenant_id, mapping_id=mapping_id, units=1))
    jobs = await stock_batches.jobs(shop.pool, shop.tenant_id, batch_id)
    assert len(jobs) == 2 and {j["status"] for j in jobs} == {"QUEUED"}

    # Under smart dispatch the printers pull them from our queue: nothing goes to the farm's.
    await save_integration(shop.pool, shop.tenant_id,
                           sp.model_copy(update={"dispatch_mode": "smart"}))
    assert await stock_handlers.submit(tenant, submit) == 0
    assert farm.open_items() == []

    await save_integration(shop.pool, shop.tenant_id, sp)
    assert await stock_handlers.submit(tenant, submit) == 2
    placed = {j["id"]: j["farm_queue_item_id"]
              for j in await stock_batches.jobs(shop.pool, shop.tenant_id, batch_id)}
    assert None not in placed.values()
    assert sorted(i.id for i in farm.open_items()) == sorted(placed.values())
    # A redelivery places nothing twice.
    assert await stock_handlers.submit(tenant, submit) == 0
    assert len(farm.open_items()) == 2
