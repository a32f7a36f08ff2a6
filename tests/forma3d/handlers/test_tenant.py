"""The tenant's handlers without Ray: webhooks from the inbox become typed order and printer
messages in the outbox, held orders resume, and the backfill and reconciliation
talk to the in-process Shopify and SimplyPrint simulators."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from forma3d.db.pool import Connection, Pool
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.handlers import farm as farm_queue
from forma3d.handlers import order as order_handlers
from forma3d.handlers import tenant as handlers
from forma3d.handlers.tenant import Tenant
from forma3d.handlers.testing import stub_services
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.message import Message, parse
from forma3d.messaging.order import (
    ApplyShopifyOrder,
    CancelOrder,
    JobStatusReport,
    ShipmentStatusReport,
    StartOrder,
)
from forma3d.messaging.printer import FarmEvent
from forma3d.messaging.tenant import (
    BackfillOrders,
    FarmWebhook,
    GetTenant,
    MappingChanged,
    ReconcileFarm,
    SendcloudWebhook,
    ShopifyWebhook,
)
from forma3d.store import inbox
from forma3d.store import orders as store_orders
from forma3d.store.integrations import load_integration
from forma3d.store.tenants import create_tenant
from sandbox.server import serve_sandboxes
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config

M = TypeVar("M", bound=Message)
ORDER: dict[str, Any] = {
    "id": 820982911946154508, "name": "#1001", "email": "jon@example.com",
    "line_items": [{"id": 466157049, "sku": "BENCHY-PLA-RED", "quantity": 2}]}


@pytest.fixture
async def tenant(db_pool: Pool, tenant_id: uuid.UUID) -> Tenant:
    services, _ = stub_services(db_pool)
    return await handlers.load(services, str(tenant_id))


async def receive(pool: Pool, tenant: Tenant, source: str, topic: str,
                  body: dict[str, Any] | bytes) -> int:
    """A verified delivery as the HTTP ingress stores it."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, tenant.tenant_id, source, str(uuid.uuid4()), topic,
                                     {}, raw)
    assert inbox_id is not None
    return inbox_id


async def command(pool: Pool, fn: Callable[[Tenant, M, Connection], Awaitable[Any]],
                  tenant: Tenant, message: M) -> Any:
    """Run a command handler the way the host does: in one transaction."""
    async with pool.acquire() as conn, conn.transaction():
        return await fn(tenant, message, conn)


async def sent(pool: Pool, tenant: Tenant) -> list[Message]:
    """The durable messages the tenant wrote to the outbox, oldest first, parsed."""
    rows = await pool.fetch("SELECT * FROM outbox WHERE tenant_id = $1 ORDER BY id",
                            tenant.tenant_id)
    return [parse(Envelope(r["target_kind"], r["target_key"], r["message_type"],
                           str(r["tenant_id"]), r["payload"])) for r in rows]


async def marked(pool: Pool, inbox_id: int) -> tuple[bool, str | None]:
    row = await pool.fetchrow("SELECT processed_at, error FROM webhook_inbox WHERE id = $1",
                              inbox_id)
    return row["processed_at"] is not None, row["error"]


async def shopify(pool: Pool, tenant: Tenant, topic: str, body: dict[str, Any] | bytes) -> str:
    inbox_id = await receive(pool, tenant, "shopify", topic, body)
    result: str = await command(pool, handlers.shopify_webhook, tenant,
                                ShopifyWebhook(tenant_id=tenant.tenant_id, inbox_id=inbox_id))
    return result


async def an_order(pool: Pool, tenant: Tenant, sku: str = "BENCHY-PLA-RED") -> uuid.UUID:
    order = ShopifyOrder.model_validate({**ORDER, "id": uuid.uuid4().int >> 80,
                                         "line_items": [{**ORDER["line_items"][0], "sku": sku}]})
    async with pool.acquire() as conn, conn.transaction():
        order_id, _ = await store_orders.insert_order(conn, tenant.tenant_id, order)
    return order_id


async def a_print_job(pool: Pool, tenant: Tenant, order_id: uuid.UUID, *, status: str,
                      queue_item: int | None = None, uid: str | None = None,
                      queued_at: datetime | None = None,
                      file_id: uuid.UUID | None = None) -> uuid.UUID:
    """A print job row in the state a test needs (its lifecycle is the order entity's)."""
    if file_id is None:
        async with pool.acquire() as conn:
            await seed_catalog(conn, tenant.tenant_id)
        file_id = await pool.fetchval("SELECT id FROM print_files WHERE tenant_id = $1 LIMIT 1",
                                      tenant.tenant_id)
    job_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO print_jobs (id, tenant_id, job_key, order_id, copy_number, file_id,
                                   status, farm_queue_item_id, farm_job_uid, queued_at)
           VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9)""",
        job_id, tenant.tenant_id, f"{order_id}:{job_id}", order_id, file_id, status, queue_item,
        uid, queued_at)
    return job_id


# --- Shopify ----------------------------------------------------------------------------


async def test_an_order_is_created_once_and_started(db_pool: Pool, tenant: Tenant) -> None:
    assert await shopify(db_pool, tenant, "orders/create", ORDER) == "created"
    # Shopify sends the same order again (orders/paid): known, nothing new to start; the order
    # entity is handed the payload (its payment may release a waiting order).
    assert await shopify(db_pool, tenant, "orders/paid", ORDER) == "known"
    order_id = await db_pool.fetchval(
        "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
        tenant.tenant_id, ORDER["id"])
    paid_inbox = await db_pool.fetchval("SELECT max(id) FROM webhook_inbox WHERE tenant_id = $1",
                                        tenant.tenant_id)
    assert await sent(db_pool, tenant) == [
        StartOrder(tenant_id=tenant.tenant_id, order_id=order_id),
        ApplyShopifyOrder(tenant_id=tenant.tenant_id, order_id=order_id, inbox_id=paid_inbox)]
    assert await db_pool.fetchval("SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1"
                                  " AND processed_at IS NOT NULL AND error IS NULL",
                                  tenant.tenant_id) == 2


async def test_a_delivery_is_processed_once(db_pool: Pool, tenant: Tenant) -> None:
    inbox_id = await receive(db_pool, tenant, "shopify", "orders/create", ORDER)
    message = ShopifyWebhook(tenant_id=tenant.tenant_id, inbox_id=inbox_id)
    assert await command(db_pool, handlers.shopify_webhook, tenant, message) == "created"
    assert await command(db_pool, handlers.shopify_webhook, tenant,
                         message) == "already processed"
    assert len(await sent(db_pool, tenant)) == 1


async def test_a_cancelled_order_is_cancelled(db_pool: Pool, tenant: Tenant) -> None:
    await shopify(db_pool, tenant, "orders/create", ORDER)
    cancelled = {**ORDER, "cancelled_at": "2026-01-02T10:00:00Z", "cancel_reason": "customer"}
    assert await shopify(db_pool, tenant, "orders/cancelled", cancelled) == "cancelling"
    start, cancel = await sent(db_pool, tenant)
    assert isinstance(start, StartOrder)
    assert cancel == CancelOrder(tenant_id=tenant.tenant_id, order_id=start.order_id,
                                 reason="customer")


async def test_a_malformed_or_foreign_delivery_is_marked(db_pool: Pool, tenant: Tenant) -> None:
    malformed = await receive(db_pool, tenant, "shopify", "orders/create", {"id": "not-a-number"})
    assert await command(db_pool, handlers.shopify_webhook, tenant, ShopifyWebhook(
        tenant_id=tenant.tenant_id, inbox_id=malformed)) == "dead letter"
    processed, error = await marked(db_pool, malformed)
    assert processed and error is not None and error.startswith("ValidationError")

    assert await shopify(db_pool, tenant, "products/update", {"id": 1}) == "ignored"
    assert await sent(db_pool, tenant) == []
    assert await db_pool.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1",
                                  tenant.tenant_id) == 0


# --- SimplyPrint ------------------------------------------------------------------------


async def test_a_farm_event_goes_to_the_order_and_the_printer(db_pool: Pool,
                                                              tenant: Tenant) -> None:
    order_id = await an_order(db_pool, tenant)
    job_id = await a_print_job(db_pool, tenant, order_id, status="PRINTING", queue_item=11,
                               uid="pj_1")
    printer_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO printers (id, tenant_id, name, external_id, farm_printer_id)"
        " VALUES ($1, $2, 'MK4 #3', 'sp-3', 3)", printer_id, tenant.tenant_id)
    job = {"uid": "pj_1", "printer_id": 3}
    inbox_id = await receive(db_pool, tenant, "simplyprint", "job.done", {
        "event": "job.done", "timestamp": 1705320000, "data": {"job": job}})
    message = FarmWebhook(tenant_id=tenant.tenant_id, inbox_id=inbox_id)
    assert await handlers.farm_webhook(tenant, message) == "forwarded"
    assert await sent(db_pool, tenant) == [
        FarmEvent(tenant_id=tenant.tenant_id, printer_id=printer_id, event="job.done", job=job,
                  at=1705320000),
        JobStatusReport(tenant_id=tenant.tenant_id, order_id=order_id, print_job_id=job_id,
                        status="COMPLETED", at=datetime.fromtimestamp(1705320000, UTC),
                        queue_item_id=11, farm_job_uid="pj_1", farm_printer_id=3,
                        error="farm event job.done")]
    forward = await db_pool.fetchval(
        "SELECT message_id FROM outbox WHERE tenant_id = $1 AND target_kind = 'printer'",
        tenant.tenant_id)
    assert forward == uuid.uuid5(uuid.NAMESPACE_URL, f"forma3d:inbox:{inbox_id}")
    assert await marked(db_pool, inbox_id) == (True, None)
    assert await handlers.farm_webhook(tenant, message) == "already processed"
    assert len(await sent(db_pool, tenant)) == 2


async def test_a_farm_event_about_an_unknown_job_is_marked(db_pool: Pool,
                                                           tenant: Tenant) -> None:
    unknown = await receive(db_pool, tenant, "simplyprint", "job.started", {
        "event": "job.started", "timestamp": 1705320000,
        "data": {"job": {"uid": "pj_elsewhere", "printer_id": 99}}})
    assert await handlers.farm_webhook(tenant, FarmWebhook(
        tenant_id=tenant.tenant_id, inbox_id=unknown)) == "unknown job"
    assert await marked(db_pool, unknown) == (True, "not one of our jobs")

    other = await receive(db_pool, tenant, "simplyprint", "printer.online", {
        "event": "printer.online", "timestamp": 1705320000, "data": {"printer": {"id": 99}}})
    assert await handlers.farm_webhook(tenant, FarmWebhook(
        tenant_id=tenant.tenant_id, inbox_id=other)) == "ignored"
    assert await marked(db_pool, other) == (True, None)
    assert await sent(db_pool, tenant) == []


# --- Sendcloud --------------------------------------------------------------------------


async def test_a_parcel_status_goes_to_its_order(db_pool: Pool, tenant: Tenant) -> None:
    order_id = await an_order(db_pool, tenant)
    await db_pool.execute(
        "INSERT INTO shipments (id, tenant_id, order_id, external_reference, parcel_id)"
        " VALUES ($1, $2, $3, $4, 9)", uuid.uuid4(), tenant.tenant_id, order_id, str(order_id))

    async def parcel(parcel_id: int) -> tuple[int, str]:
        inbox_id = await receive(db_pool, tenant, "sendcloud", "parcel_status_changed", {
            "action": "parcel_status_changed", "timestamp": 1525271885993,
            "parcel": {"id": parcel_id, "status": {"id": 3, "message": "En route"}}})
        result = await command(db_pool, handlers.sendcloud_webhook, tenant, SendcloudWebhook(
            tenant_id=tenant.tenant_id, inbox_id=inbox_id))
        return inbox_id, result

    known, result = await parcel(9)
    assert result == "forwarded" and await marked(db_pool, known) == (True, None)
    assert await sent(db_pool, tenant) == [ShipmentStatusReport(
        tenant_id=tenant.tenant_id, order_id=order_id, status_id=3, message="En route",
        at=datetime.fromtimestamp(1525271885993 / 1000, UTC))]
    unknown, result = await parcel(10)
    assert result == "unknown parcel" and await marked(db_pool, unknown) == (True,
                                                                             "unknown parcel")
    assert len(await sent(db_pool, tenant)) == 1


async def test_a_parcel_webhook_carries_its_tracking_to_the_order(db_pool: Pool,
                                                                  tenant: Tenant) -> None:
    order_id = await an_order(db_pool, tenant)
    await db_pool.execute(
        "INSERT INTO shipments (id, tenant_id, order_id, external_reference, parcel_id)"
        " VALUES ($1, $2, $3, $4, 9)", uuid.uuid4(), tenant.tenant_id, order_id, str(order_id))
    inbox_id = await receive(db_pool, tenant, "sendcloud", "parcel_status_changed", {
        "action": "parcel_status_changed", "timestamp": 1525271885993,
        "parcel": {"id": 9, "status": {"id": 3, "message": "En route"},
                   "tracking_number": "3SNEW42", "tracking_url": "https://t.example/3SNEW42"}})
    assert await command(db_pool, handlers.sendcloud_webhook, tenant, SendcloudWebhook(
        tenant_id=tenant.tenant_id, inbox_id=inbox_id)) == "forwarded"
    [report] = await sent(db_pool, tenant)
    assert isinstance(report, ShipmentStatusReport)
    assert (report.tracking_number, report.tracking_url) == (
        "3SNEW42", "https://t.example/3SNEW42")


# --- mappings --------------------------------------------------------------------------


async def test_a_new_mapping_resumes_the_orders_held_for_it(db_pool: Pool,
                                                            tenant: Tenant) -> None:
    held = await an_order(db_pool, tenant, sku="MYSTERY-SKU")
    elsewhere = await an_order(db_pool, tenant, sku="OTHER-SKU")
    await db_pool.execute("UPDATE line_items SET status = 'NEEDS_MAPPING' WHERE order_id = ANY($1)",
                          [held, elsewhere])
    message = MappingChanged(tenant_id=tenant.tenant_id, sku="MYSTERY-SKU")
    assert await command(db_pool, handlers.mapping_changed, tenant, message) == 1
    assert await sent(db_pool, tenant) == [StartOrder(tenant_id=tenant.tenant_id, order_id=held)]


# --- backfill and reconciliation against the simulators -----------------------------------


@pytest.fixture
async def sandbox_farm(db_pool: Pool) -> AsyncIterator[Farm]:
    """A tenant connected to the simulators on loopback, with their webhooks lost (no ingress
    runs here): what reaches us, reaches us by backfill and reconciliation."""
    config = sandbox_config()
    config.shopify.loss_rate = config.simplyprint.loss_rate = config.sendcloud.loss_rate = 1.0
    running = await serve_sandboxes(config)
    tenant_id = await create_tenant(db_pool, f"h-{uuid.uuid4().hex[:10]}")
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config)
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


async def test_backfill_pulls_orders_whose_webhooks_were_lost(db_pool: Pool,
                                                              sandbox_farm: Farm) -> None:
    services, _ = stub_services(db_pool)
    tenant = await handlers.load(services, str(sandbox_farm.tenant_id))
    missed = [sandbox_farm.send_order([("BENCHY-PLA-RED", 1)]),
              sandbox_farm.send_order([("GRID-BIN-2X3-PETG-BLACK", 2)])]
    backfill = BackfillOrders(tenant_id=tenant.tenant_id)
    assert await handlers.backfill(tenant, backfill) == 2
    assert await handlers.backfill(tenant, backfill) == 0  # known orders are not ingested twice
    orders = dict(await db_pool.fetch(
        "SELECT shopify_order_id, id FROM orders WHERE tenant_id = $1", tenant.tenant_id))
    assert set(orders) == set(missed)
    assert sorted(str(m.order_id) for m in await sent(db_pool, tenant)
                  if isinstance(m, StartOrder)) == sorted(str(o) for o in orders.values())

    sandbox_farm.shopify.cancel_order(missed[0], reason="fraud")
    assert await handlers.backfill(tenant, backfill) == 0
    assert (await sent(db_pool, tenant))[-1] == CancelOrder(
        tenant_id=tenant.tenant_id, order_id=orders[missed[0]], reason="fraud")


async def test_reconcile_reports_what_the_farm_did(db_pool: Pool, sandbox_farm: Farm) -> None:
    services, _ = stub_services(db_pool)
    tenant = await handlers.load(services, str(sandbox_farm.tenant_id))
    order_id = await an_order(db_pool, tenant)
    file_id = await db_pool.fetchval(
        "SELECT file_id FROM mapping_parts WHERE tenant_id = $1 LIMIT 1", tenant.tenant_id)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    printed = await a_print_job(db_pool, tenant, order_id, status="QUEUED", file_id=file_id)
    job = {"id": printed, "job_key": f"{order_id}:{printed}", "attempts": 0, "file_id": file_id}
    settings = await load_integration(db_pool, tenant.tenant_id, SimplyPrintSettings)
    assert settings is not None
    async with settings.client() as client:
        placed = await farm_queue.queue_jobs(db_pool, client, [job])
    await db_pool.execute("UPDATE print_jobs SET farm_queue_item_id = $2, queued_at = $3"
                          " WHERE id = $1", printed, placed[printed], hour_ago)
    vanished = await a_print_job(db_pool, tenant, order_id, status="QUEUED", queue_item=987654,
                                 queued_at=hour_ago, file_id=file_id)
    simulated = sandbox_farm.sandboxes.sandboxes.simplyprint.farm
    for _ in range(200):  # an hour of printing takes about a second at the farm's speed-up
        done = [j for j in simulated.jobs.values()
                if j.queue_item_id == placed[printed] and j.state == "done"]
        if done:
            break
        await asyncio.sleep(0.05)
    assert done, "the farm printed the queued job"

    assert await handlers.reconcile_farm(tenant, ReconcileFarm(tenant_id=tenant.tenant_id)) == 2
    reports = {m.print_job_id: m for m in await sent(db_pool, tenant)
               if isinstance(m, JobStatusReport)}
    assert reports[printed].status == "COMPLETED"
    assert reports[printed].farm_job_uid == done[0].uid
    assert reports[printed].order_id == order_id
    assert reports[vanished].status == "FAILED"
    assert reports[vanished].error == "vanished from the farm's queue and history"


async def test_a_queued_job_missing_from_the_farm_fails_only_after_the_grace_period(
        db_pool: Pool, sandbox_farm: Farm) -> None:
    """The "vanished job" branch: a queue item the farm no longer lists, with no history, is
    reported FAILED once the grace period has passed, and the order entity fails the job."""
    services, _ = stub_services(db_pool)
    tenant = await handlers.load(services, str(sandbox_farm.tenant_id))
    await db_pool.execute(
        "UPDATE tenants SET settings = settings || '{\"stranded_job_seconds\": 600}'"
        " WHERE id = $1", tenant.tenant_id)
    order_id = await an_order(db_pool, tenant)
    just_now = datetime.now(UTC)
    fresh = await a_print_job(db_pool, tenant, order_id, status="QUEUED", queue_item=555001,
                              queued_at=just_now)
    assert await handlers.reconcile_farm(tenant, ReconcileFarm(tenant_id=tenant.tenant_id)) == 0
    await db_pool.execute("UPDATE print_jobs SET queued_at = $2, max_attempts = 1 WHERE id = $1",
                          fresh, just_now - timedelta(minutes=11))
    assert await handlers.reconcile_farm(tenant, ReconcileFarm(tenant_id=tenant.tenant_id)) == 1
    [report] = [m for m in await sent(db_pool, tenant) if isinstance(m, JobStatusReport)]
    assert (report.print_job_id, report.status) == (fresh, "FAILED")

    order = await order_handlers.load(services, str(order_id))
    async with db_pool.acquire() as conn, conn.transaction():
        await order_handlers.job_status(order, report, conn)
    job = await db_pool.fetchrow("SELECT status, error FROM print_jobs WHERE id = $1", fresh)
    assert job["status"] == "FAILED"
    assert job["error"] == "vanished from the farm's queue and history"


async def test_get_answers_the_tenant_as_stored(db_pool: Pool, tenant: Tenant) -> None:
    answer = await handlers.get(tenant, GetTenant(tenant_id=tenant.tenant_id))
    row = await db_pool.fetchrow("SELECT id, slug FROM tenants WHERE id = $1", tenant.tenant_id)
    assert (answer["id"], answer["slug"]) == (row["id"], row["slug"])
    with pytest.raises(LookupError, match="does not exist"):
        await handlers.load(tenant.services, str(uuid.uuid4()))
