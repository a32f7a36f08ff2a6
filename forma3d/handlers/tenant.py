"""The tenant entity (one per tenant): turns inbound webhooks into order and printer messages,
resumes held orders when a mapping appears, reconciles the farm, backfills Shopify; its
catalogue, queue order and stock (ledger, batches, replenishment) have their own modules.

Webhooks arrive stored in the inbox (forma3d.store.inbox); each is processed once and marked,
with the reason when it could not be used, or becomes a dead letter (reason, event, metric) when
processing failed, until an operator retries it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError

from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.orders.shopify_order import (
    ORDER_TOPICS,
    REFUND_TOPICS,
    ShopifyOrder,
    ShopifyRefund,
)
from forma3d.domain.printing.reconcile import JobUpdate, reconcile
from forma3d.domain.tenants import TenantSettings
from forma3d.handlers import catalog, queue, stock
from forma3d.handlers.registry import EntitySpec, Handlers
from forma3d.handlers.services import Services
from forma3d.integrations.errors import IntegrationError
from forma3d.integrations.sendcloud_shipping import CarrierStatus
from forma3d.integrations.settings import SendcloudSettings, ShopifySettings, SimplyPrintSettings
from forma3d.integrations.simplyprint import webhook_job_status
from forma3d.integrations.webhooks import FarmWebhookPayload, SendcloudWebhookPayload
from forma3d.messaging.message import Message
from forma3d.messaging.order import (
    ApplyRefund,
    ApplyShopifyOrder,
    CancelOrder,
    JobStatusReport,
    ShipmentStatusReport,
    StartOrder,
)
from forma3d.messaging.printer import FarmEvent
from forma3d.messaging.refusals import Invalid, NotFound
from forma3d.messaging.stock import StockJobReport
from forma3d.messaging.tenant import (
    WEBHOOK_MESSAGES,
    BackfillOrders,
    CreateOrder,
    FarmWebhook,
    GetTenant,
    MappingChanged,
    ReconcileFarm,
    ReconcileShipments,
    RetryDeadLetter,
    SendcloudWebhook,
    ShopifyWebhook,
    UpdateTenantSettings,
)
from forma3d.store import inbox
from forma3d.store import orders as store_orders
from forma3d.store.events import record
from forma3d.store.integrations import load_integration
from forma3d.store.outbox import send, send_many
from forma3d.store.tenants import change_settings, tenant_settings

log = logging.getLogger(__name__)
BACKFILL_LOOKBACK = timedelta(days=2)
HISTORY_PAGES = 20  # reconciliation reads at most this many pages of the farm's job history


@dataclass
class Tenant:
    services: Services
    tenant_id: uuid.UUID
    row: dict[str, Any]


async def load(services: Services, key: str) -> Tenant:
    row = await services.pool.fetchrow("SELECT * FROM tenants WHERE id = $1", uuid.UUID(key))
    if row is None:
        raise LookupError(f"tenant {key} does not exist")
    return Tenant(services, row["id"], record_to_dict(row))


HANDLERS: Handlers[Tenant] = Handlers()


@HANDLERS.query(GetTenant)
async def get(tenant: Tenant, message: GetTenant) -> dict[str, Any]:
    return dict(tenant.row)


# --- Shopify ----------------------------------------------------------------------------


@HANDLERS.command(UpdateTenantSettings)
async def update_settings(tenant: Tenant, message: UpdateTenantSettings,
                          conn: Connection) -> dict[str, Any]:
    """Change settings, checked as a whole (a bad value is refused naming its field), with a
    `tenant.settings-changed` event of what changed; answers every setting."""
    current = await tenant_settings(conn, tenant.tenant_id)
    try:
        merged = TenantSettings.model_validate(current.model_dump() | message.changes)
    except ValidationError as error:
        raise Invalid([(".".join(str(p) for p in e["loc"]), e["msg"])
                       for e in error.errors()]) from None
    changes = {k: v for k, v in merged.model_dump(mode="json").items() if k in message.changes}
    before = await change_settings(conn, tenant.tenant_id, changes)
    if before:
        await record(conn, EventType.TENANT_SETTINGS_CHANGED, tenant.tenant_id, {
            "before": before, "after": {k: changes[k] for k in before},
            "changed_by": message.by}, subject=("tenant", tenant.tenant_id))
    return merged.model_dump(mode="json")


@HANDLERS.command(ShopifyWebhook)
async def shopify_webhook(tenant: Tenant, message: ShopifyWebhook, conn: Connection) -> str:
    delivery = await inbox.unprocessed(conn, tenant.tenant_id, message.inbox_id)
    if delivery is None:
        return "already processed"
    if delivery.topic not in ORDER_TOPICS | REFUND_TOPICS:
        await inbox.mark_processed(conn, tenant.tenant_id, delivery.id)
        return "ignored"
    try:
        async with conn.transaction():  # a savepoint: a failure undoes only this delivery's work
            if delivery.topic in REFUND_TOPICS:
                result = await _refund(conn, tenant, delivery)
            else:
                order = ShopifyOrder.model_validate_json(delivery.body)
                result = await ingest(conn, tenant.tenant_id, order, delivery.topic,
                                      inbox_id=delivery.id)
            await inbox.mark_processed(conn, tenant.tenant_id, delivery.id,
                                       "unknown order" if result == "unknown order" else None)
    except inbox.PERMANENT_FAILURES as error:
        return await _dead_letter(conn, tenant, delivery, error)
    return result


async def _refund(conn: Connection, tenant: Tenant, delivery: inbox.Delivery) -> str:
    """refunds/create goes to its order's entity (which applies it once)."""
    refund = ShopifyRefund.model_validate_json(delivery.body)
    order_id = await conn.fetchval(
        "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
        tenant.tenant_id, refund.order_id)
    if order_id is None:
        return "unknown order"
    await send(conn, ApplyRefund(tenant_id=tenant.tenant_id, order_id=order_id,
                                 inbox_id=delivery.id))
    return "refund"


async def ingest(conn: Connection, tenant_id: uuid.UUID, order: ShopifyOrder, topic: str, *,
                 inbox_id: int | None = None) -> str:
    """One path for webhooks and backfill: create once, hand a newer payload (payment, edits,
    contact) of a known order to its entity, cancel when asked."""
    order_id, created = await store_orders.insert_order(conn, tenant_id, order)
    if created:
        await send(conn, StartOrder(tenant_id=tenant_id, order_id=order_id))
    elif topic in ("orders/updated", "orders/paid") and inbox_id is not None:
        await send(conn, ApplyShopifyOrder(tenant_id=tenant_id, order_id=order_id,
                                           inbox_id=inbox_id))
    if topic == "orders/cancelled" or order.cancelled_at is not None:
        reason = order.cancel_reason or "cancelled in Shopify"
        await send(conn, CancelOrder(tenant_id=tenant_id, order_id=order_id, reason=reason))
        return "cancelling"
    return "created" if created else "known"


@HANDLERS.command(CreateOrder)
async def create_order(tenant: Tenant, message: CreateOrder, conn: Connection) -> dict[str, Any]:
    """An order made by API goes the way a Shopify order goes (stored, then StartOrder), once
    per reference."""
    draft = message.draft
    lines = [store_orders.NewLineItem(number, line.sku, line.variant_id, line.title,
                                      line.quantity, line.quantity, line.requires_shipping,
                                      dict(line.properties))
             for number, line in enumerate(draft.line_items, start=1)]
    new = store_orders.NewOrder(
        name=draft.name or draft.reference, line_items=lines, email=draft.email,
        currency=draft.currency, total_price=draft.total_price,
        shipping_address=draft.shipping_address.model_dump(mode="json"),
        financial_status=draft.financial_status, source="manual", reference=draft.reference)
    order_id, created = await store_orders.insert_order(conn, tenant.tenant_id, new)
    if created:
        await send(conn, StartOrder(tenant_id=tenant.tenant_id, order_id=order_id))
    return {"order_id": str(order_id), "created": created}


@HANDLERS.step(BackfillOrders)
async def backfill(tenant: Tenant, message: BackfillOrders) -> int:
    """Orders Shopify created while its webhooks did not reach us; returns how many are new."""
    pool = tenant.services.pool
    shop = await load_integration(pool, tenant.tenant_id, ShopifySettings)
    if shop is None:
        return 0
    since = datetime.now(UTC) - BACKFILL_LOOKBACK
    created = 0
    async with shop.client() as client:
        async for remote in client.iter_orders(created_at_min=since, status="any"):
            async with pool.acquire() as conn, conn.transaction():
                known = await conn.fetchval(
                    "SELECT status FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
                    tenant.tenant_id, remote.id)
                if known is not None and (remote.cancelled_at is None or known == "CANCELLED"):
                    continue
                try:
                    order = ShopifyOrder.model_validate(remote.raw)
                except ValidationError:
                    continue
                await ingest(conn, tenant.tenant_id, order, "orders/create")
                created += known is None
    return created


# --- SimplyPrint ------------------------------------------------------------------------


def _report(tenant_id: uuid.UUID, order_id: uuid.UUID | None, update: JobUpdate) -> Message:
    """The owner's message for what the farm says about a job: its order's, or for a stock job
    (no order) this tenant's own."""
    payload = {**update.payload(), "tenant_id": tenant_id}
    if order_id is None:
        return StockJobReport.model_validate(payload)
    return JobStatusReport.model_validate(payload | {"order_id": order_id})


@HANDLERS.step(FarmWebhook)
async def farm_webhook(tenant: Tenant, message: FarmWebhook) -> str:
    """Every job.* / printer.* event goes to its printer (live state); job status changes of
    our jobs go to their order."""
    pool = tenant.services.pool
    delivery = await inbox.unprocessed(pool, tenant.tenant_id, message.inbox_id)
    if delivery is None:
        return "already processed"
    try:
        return await _farm_event(tenant, delivery)
    except inbox.PERMANENT_FAILURES as error:
        async with pool.acquire() as conn, conn.transaction():
            return await _dead_letter(conn, tenant, delivery, error)


async def _farm_event(tenant: Tenant, delivery: inbox.Delivery) -> str:
    pool = tenant.services.pool
    body = FarmWebhookPayload.model_validate_json(delivery.body)
    status = webhook_job_status(body.event)
    job = body.data.job
    printer = body.farm_printer_id
    ours_printer = printer and await pool.fetchval(
        "SELECT id FROM printers WHERE tenant_id = $1 AND farm_printer_id = $2",
        tenant.tenant_id, printer)
    if ours_printer:
        # A deterministic id: a retried step forwards the same event once.
        forward = uuid.uuid5(uuid.NAMESPACE_URL, f"forma3d:inbox:{delivery.id}")
        async with pool.acquire() as conn, conn.transaction():
            await send(conn, FarmEvent(tenant_id=tenant.tenant_id, printer_id=ours_printer,
                                       event=body.event, job=body.job_dict,
                                       at=body.timestamp), message_id=forward)
    if status is None or job is None or not job.uid:
        await inbox.mark_processed(pool, tenant.tenant_id, delivery.id)
        return "ignored"
    ours = await _job_for_farm_job(tenant, job.uid, printer)
    async with pool.acquire() as conn, conn.transaction():
        if ours is not None:
            update = JobUpdate(str(ours["id"]), status, body.at, ours["farm_queue_item_id"],
                               job.uid, printer, job.failedReason or f"farm event {body.event}")
            await send(conn, _report(tenant.tenant_id, ours["order_id"], update))
        await inbox.mark_processed(conn, tenant.tenant_id, delivery.id,
                                   None if ours else "not one of our jobs")
    return "forwarded" if ours else "unknown job"


async def _job_for_farm_job(tenant: Tenant, uid: str,
                            printer: int | None) -> dict[str, Any] | None:
    """Our job for a farm job: by its uid, else by its queue item in the job history."""
    pool = tenant.services.pool
    found = await pool.fetchrow(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND farm_job_uid = $2",
        tenant.tenant_id, uid)
    if found is not None:
        return record_to_dict(found)
    sp = await load_integration(pool, tenant.tenant_id, SimplyPrintSettings)
    if sp is None:
        return None
    async with sp.client() as client:
        page = await client.get_print_jobs(printer_ids=[printer] if printer else None,
                                           page_size=50)
    item = next(((j.queue_item or {}).get("id") for j in page.jobs if j.uid == uid), None)
    if item is None:
        return None
    found = await pool.fetchrow(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND farm_queue_item_id = $2",
        tenant.tenant_id, int(item))
    return record_to_dict(found) if found else None


@HANDLERS.step(ReconcileFarm)
async def reconcile_farm(tenant: Tenant, message: ReconcileFarm) -> int:
    """Compare active jobs with the farm's queue and history; report what differs."""
    pool = tenant.services.pool
    active = [record_to_dict(r) for r in await pool.fetch(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND status IN ('QUEUED', 'PRINTING')"
        " AND farm_queue_item_id IS NOT NULL", tenant.tenant_id)]
    sp = await load_integration(pool, tenant.tenant_id, SimplyPrintSettings)
    if not active or sp is None:
        return 0
    settings = await tenant_settings(pool, tenant.tenant_id)
    oldest = min((j["queued_at"] for j in active if j["queued_at"]), default=datetime.now(UTC))
    async with sp.client() as client:
        listing = await client.get_queue_items()
        history = []
        page_number = 1
        while page_number <= HISTORY_PAGES:
            page = await client.get_print_jobs(page=page_number, page_size=100,
                                               start_date=int(oldest.timestamp()) - 3600)
            history.extend(page.jobs)
            if page_number >= page.page_amount:
                break
            page_number += 1
    updates = reconcile(active, {i.id for i in listing.items}, history, now=datetime.now(UTC),
                        grace=timedelta(seconds=settings.stranded_job_seconds))
    orders = {str(j["id"]): j["order_id"] for j in active}
    async with pool.acquire() as conn, conn.transaction():
        for update in updates:
            await send(conn, _report(tenant.tenant_id, orders[update.print_job_id], update))
    return len(updates)


# --- Sendcloud --------------------------------------------------------------------------


@HANDLERS.command(SendcloudWebhook)
async def sendcloud_webhook(tenant: Tenant, message: SendcloudWebhook, conn: Connection) -> str:
    delivery = await inbox.unprocessed(conn, tenant.tenant_id, message.inbox_id)
    if delivery is None:
        return "already processed"
    try:
        async with conn.transaction():  # a savepoint: a failure undoes only this delivery's work
            return await _parcel_event(conn, tenant, delivery)
    except inbox.PERMANENT_FAILURES as error:
        return await _dead_letter(conn, tenant, delivery, error)


async def _parcel_event(conn: Connection, tenant: Tenant, delivery: inbox.Delivery) -> str:
    body = SendcloudWebhookPayload.model_validate_json(delivery.body)
    parcel = body.parcel
    if body.action != "parcel_status_changed" or parcel is None or parcel.id is None \
            or parcel.status is None or parcel.status.id is None:
        await inbox.mark_processed(conn, tenant.tenant_id, delivery.id)
        return "ignored"
    order_id = await conn.fetchval(
        "SELECT order_id FROM shipments WHERE tenant_id = $1 AND parcel_id = $2",
        tenant.tenant_id, parcel.id)
    if order_id is not None:
        await send(conn, ShipmentStatusReport(
            tenant_id=tenant.tenant_id, order_id=order_id, status_id=parcel.status.id,
            message=parcel.status.message, at=body.at,
            tracking_number=parcel.tracking_number or None,
            tracking_url=parcel.tracking_url or None))
    await inbox.mark_processed(conn, tenant.tenant_id, delivery.id,
                               None if order_id else "unknown parcel")
    return "forwarded" if order_id else "unknown parcel"


OPEN_PARCELS = """SELECT order_id, parcel_id, carrier_shipment_id, api_version, status,
           carrier_status_id, carrier_status_code, tracking_number, status_at
      FROM shipments
     WHERE tenant_id = $1 AND parcel_id IS NOT NULL
       AND status IN ('LABEL_CREATED', 'ANNOUNCED', 'IN_TRANSIT', 'EXCEPTION', 'CANCEL_REQUESTED')
     ORDER BY coalesce(status_at, created_at) LIMIT $2"""
MIN_AT = datetime.min.replace(tzinfo=UTC)
RECONCILED_PARCELS = 500  # per round: at Sendcloud's 1000 reads a minute, half a minute of reads
PARCEL_READS = 4  # at once


@HANDLERS.step(ReconcileShipments)
async def reconcile_shipments(tenant: Tenant, message: ReconcileShipments) -> int:
    """Read the open parcels back from Sendcloud (through the API version that made each) and
    report every one whose status or tracking differs from ours: a webhook Sendcloud never
    delivered is applied now. Returns how many reports were sent."""
    pool = tenant.services.pool
    rows = [record_to_dict(r) for r in await pool.fetch(OPEN_PARCELS, tenant.tenant_id,
                                                        RECONCILED_PARCELS)]
    sc = await load_integration(pool, tenant.tenant_id, SendcloudSettings)
    if not rows or sc is None:
        return 0
    gate = asyncio.Semaphore(PARCEL_READS)
    carriers = {version: sc.model_copy(update={"api_version": version}).shipping()
                for version in {r["api_version"] for r in rows}}

    async def read(row: dict[str, Any]) -> ShipmentStatusReport | None:
        async with gate:
            try:
                now = await carriers[row["api_version"]].status(row["parcel_id"],
                                                                row["carrier_shipment_id"])
            except IntegrationError as error:
                log.warning("reconciling parcel %s: %s", row["parcel_id"], error)
                return None
        return _missed(tenant.tenant_id, row, now)

    try:
        reports = [r for r in await asyncio.gather(*(read(r) for r in rows)) if r is not None]
    finally:
        for carrier in carriers.values():
            await carrier.aclose()
    if reports:
        messages: list[Message] = [*reports]
        async with pool.acquire() as conn, conn.transaction():
            await send_many(conn, messages)
    return len(reports)


def _missed(tenant_id: uuid.UUID, row: dict[str, Any], now: CarrierStatus,
            ) -> ShipmentStatusReport | None:
    """The report Sendcloud's webhook would have brought, or None when nothing differs."""
    moved = (now.status_id is not None and now.status_id != row["carrier_status_id"]) or (
        now.status_code is not None and now.status_code != row["carrier_status_code"])
    retracked = bool(now.tracking_number) and now.tracking_number != row["tracking_number"]
    if not moved and not retracked:
        return None
    # What Sendcloud answers now is newer than anything applied (webhook clocks may run ahead).
    at = max(datetime.now(UTC), (row["status_at"] or MIN_AT) + timedelta(milliseconds=1))
    return ShipmentStatusReport(
        tenant_id=tenant_id, order_id=row["order_id"], status_id=now.status_id,
        status_code=now.status_code, message=now.message, at=at,
        tracking_number=now.tracking_number or None, tracking_url=now.tracking_url or None)


# --- dead letters -----------------------------------------------------------------------

_dead_letters: Any = None


def _count_dead_letter(source: str) -> None:
    """The metric operators alert on (`forma3d_webhook_dead_letters_total`, by source), exported
    by Ray's metrics agent where the host runs in Ray, a no-op elsewhere."""
    global _dead_letters
    if _dead_letters is None:
        from ray.util.metrics import Counter

        _dead_letters = Counter("forma3d_webhook_dead_letters_total",
                                description="Stored webhook deliveries whose processing failed",
                                tag_keys=("source",))
    _dead_letters.inc(1, tags={"source": source})


async def _dead_letter(conn: Connection, tenant: Tenant, delivery: inbox.Delivery,
                       error: Exception) -> str:
    """Processing failed in a way a retry will not change: the delivery becomes a dead letter
    (reason, event, metric) for an operator instead of failing silently or retrying forever."""
    reason = f"{type(error).__name__}: {error}"
    if await inbox.dead_letter(conn, tenant.tenant_id, delivery.id, reason):
        _count_dead_letter(delivery.source)
        log.warning("webhook %s of tenant %s dead-lettered: %s", delivery.id, tenant.tenant_id,
                    type(error).__name__)
    return "dead letter"


@HANDLERS.command(RetryDeadLetter)
async def retry_dead_letter(tenant: Tenant, message: RetryDeadLetter,
                            conn: Connection) -> dict[str, Any]:
    """An operator's retry: the delivery goes back to processing through the outbox."""
    delivery = await inbox.revive(
        conn, tenant.tenant_id, message.inbox_id,
        lambda source, inbox_id: WEBHOOK_MESSAGES[source](tenant_id=tenant.tenant_id,
                                                          inbox_id=inbox_id))
    if delivery is None:
        raise NotFound(f"no dead-lettered webhook {message.inbox_id}")
    return {"id": delivery.id, "status": "retrying"}


# --- mappings ---------------------------------------------------------------------------


@HANDLERS.command(MappingChanged)
async def mapping_changed(tenant: Tenant, message: MappingChanged, conn: Connection) -> int:
    """A new or changed product mapping resumes orders held for its SKU (GridFlock items map
    through `mapping_sku` and may be GENERATING while their pipeline runs)."""
    orders = await conn.fetch(
        "SELECT DISTINCT order_id FROM line_items WHERE tenant_id = $1"
        " AND (sku = $2 OR mapping_sku = $2) AND status IN ('NEEDS_MAPPING', 'GENERATING')",
        tenant.tenant_id, message.sku)
    for row in orders:
        await send(conn, StartOrder(tenant_id=tenant.tenant_id, order_id=row["order_id"]))
    return len(orders)


# The tenant also owns its catalogue, its queue's order and its stock; their handlers live in
# their modules.
ENTITY = EntitySpec("tenant", load, Handlers.merged(
    HANDLERS, cast(Handlers[Tenant], catalog.HANDLERS), cast(Handlers[Tenant], queue.HANDLERS),
    cast(Handlers[Tenant], stock.HANDLERS)))
