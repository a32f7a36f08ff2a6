"""The order entity: one per order; drives it from print jobs on the farm to a fulfilled shipment.

Commands change rows in one transaction; steps talk to SimplyPrint, Sendcloud and Shopify and are
idempotent by construction (queue notes, Sendcloud's external_reference, looking before
creating), so a redelivered message repeats nothing that already happened. Every status this
entity changes goes through its store function (`store.orders`, `store.shipments`,
`store.print_jobs`), which records the event in the same transaction.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from forma3d.db.pool import Connection, Pool
from forma3d.domain.events import EventType
from forma3d.domain.gridflock.sku import is_custom_sku
from forma3d.domain.inventory.batch import units_produced
from forma3d.domain.orders.expansion import expand_line_item
from forma3d.domain.orders.live import (
    LineChange,
    Payment,
    awaiting_reason,
    copies_beyond,
    payment_decision,
    skip_reason,
    units_to_make,
)
from forma3d.domain.orders.shopify_order import (
    ShopifyAddress,
    ShopifyOrder,
    ShopifyRefund,
    split_street,
)
from forma3d.domain.orders.states import ORDER_MACHINE, LineItemStatus, OrderStatus
from forma3d.domain.printing.jobs import farm_time
from forma3d.domain.printing.mapping import ProductMapping
from forma3d.domain.printing.states import ACTIVE_JOB_STATUSES, PrintJobStatus
from forma3d.domain.shipping.delivery import CheckoutDelivery, choose_method, parcel_dimensions
from forma3d.domain.shipping.parcel import parcel_weight_kg
from forma3d.domain.shipping.states import (
    SHIPMENT_MACHINE,
    ShipmentStatus,
    advance,
    status_from_sendcloud,
    status_from_sendcloud_code,
)
from forma3d.domain.shipping.tracking import shopify_shipment_status
from forma3d.handlers import farm
from forma3d.handlers.gridflock_intake import intake
from forma3d.handlers.registry import EntitySpec, Handlers
from forma3d.handlers.services import Services
from forma3d.integrations.errors import PermanentError, TransientError
from forma3d.integrations.sendcloud import CancelOutcome
from forma3d.integrations.sendcloud_shipping import Destination, ShipmentOrder
from forma3d.integrations.settings import (
    IntegrationMissing,
    IntegrationSettings,
    SendcloudSettings,
    ShopifySettings,
    SimplyPrintSettings,
)
from forma3d.integrations.shopify import FulfillmentOrderLines, TrackingInfo
from forma3d.messaging.order import (
    ApplyRefund,
    ApplyShopifyOrder,
    CancelJob,
    CancelOrder,
    ForceJobStatus,
    HoldOrder,
    JobStatusReport,
    ReleaseOrder,
    RetryJob,
    RetryShipment,
    ShipmentStatusReport,
    ShipOrder,
    StartOrder,
    SubmitJobs,
    SyncShopifyTracking,
    WithdrawJobs,
)
from forma3d.messaging.printer import ControlPrinter, ReleasePrinter
from forma3d.messaging.refusals import Conflict, NotFound
from forma3d.store import inbox, print_jobs, shipments, stock
from forma3d.store import orders as store
from forma3d.store.events import record
from forma3d.store.integrations import load_integration, note_failure
from forma3d.store.orders import NewLineItem, OrderRow
from forma3d.store.outbox import send
from forma3d.store.shipments import Parcel, ShipmentRow
from forma3d.store.tenants import tenant_settings

log = logging.getLogger(__name__)
S = TypeVar("S", bound=IntegrationSettings)
EXPANDABLE = (LineItemStatus.PENDING, LineItemStatus.NEEDS_MAPPING, LineItemStatus.GENERATING)
ON_PRINTER = frozenset({PrintJobStatus.ASSIGNED, PrintJobStatus.PRINTING})
MAPPING_ACTION = "create one (POST /api/v1/product-mappings) and the order resumes by itself"


@dataclass
class Order:
    """The entity's memory: which order, of which tenant. Everything else is read when needed,
    so PostgreSQL stays the one truth."""

    services: Services
    order_id: uuid.UUID
    tenant_id: uuid.UUID

    @property
    def pool(self) -> Pool:
        return self.services.pool

    def submit_jobs(self) -> SubmitJobs:
        return SubmitJobs(tenant_id=self.tenant_id, order_id=self.order_id)


async def load(services: Services, key: str) -> Order:
    order_id = uuid.UUID(key)
    tenant_id = await services.pool.fetchval("SELECT tenant_id FROM orders WHERE id = $1",
                                             order_id)
    if tenant_id is None:
        raise LookupError(f"order {key} does not exist")
    return Order(services, order_id, tenant_id)


HANDLERS: Handlers[Order] = Handlers()


async def _status(order: Order, conn: Connection | None = None) -> OrderStatus:
    """Pass the handler's connection when it holds a transaction: a second pooled connection
    per busy entity would let a burst of handlers exhaust the pool."""
    db = conn if conn is not None else order.pool
    return OrderStatus(await db.fetchval("SELECT status FROM orders WHERE id = $1",
                                         order.order_id))


async def _integration(order: Order, model: type[S]) -> S:
    settings = await load_integration(order.pool, order.tenant_id, model)
    if settings is None:
        raise IntegrationMissing(f"{model.service} is not configured for this tenant")
    return settings


# --- expansion ----------------------------------------------------------------------------


async def expand(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID) -> int:
    """Resolve mappings, take what stock has (Stock Management on), and create print jobs for
    the rest of every line item that can start; returns the number of jobs created. Idempotent:
    a line item's reservation is made once (the ledger remembers it) and jobs are unique per
    order, line item, part and copy."""
    created = 0
    settings = await tenant_settings(conn, tenant_id)
    ready: list[tuple[dict[str, Any], ProductMapping, bool]] = []
    for item in await store.line_items(conn, tenant_id, order_id, *EXPANDABLE, lock=True):
        skip = skip_reason(item["sku"], item["requires_shipping"], settings.ignored_sku_patterns)
        if skip is not None and item["status"] != LineItemStatus.GENERATING:
            await store.skip_line_item(conn, item, skip)
            continue
        sku = item["sku"] or ""
        # --- GridFlock (issue 5): GRID-CUSTOM maps through its canonical SKU, or waits/holds.
        if is_custom_sku(sku):
            canonical = await intake(conn, tenant_id, item)
            if canonical is None:
                continue
            sku = canonical
        # --- end GridFlock
        mapping = await store.load_mapping(conn, tenant_id, sku, item["variant_id"])
        if mapping is None:
            if item["status"] != LineItemStatus.NEEDS_MAPPING:
                await store.set_line_item_status(
                    conn, item, LineItemStatus.NEEDS_MAPPING,
                    reason=f"no product mapping for SKU {item['sku']!r}: {MAPPING_ACTION}")
            continue
        ready.append((item, mapping, settings.stock_management_enabled
                      and not is_custom_sku(item["sku"] or "")))
    # Stock rows are locked in one order first, so orders never deadlock on each other.
    await stock.lock_items(conn, tenant_id, [uuid.UUID(m.mapping_id) for _, m, s in ready if s])
    for item, mapping, use_stock in ready:
        mapping_id = uuid.UUID(mapping.mapping_id)
        from_stock = await stock.ever_reserved(conn, tenant_id, item["id"])
        if use_stock and from_stock == 0:
            from_stock = await stock.reserve(conn, item, mapping_id, item["quantity"])
        specs = expand_line_item(str(order_id), str(item["id"]), item["quantity"], mapping,
                                 from_stock=from_stock)
        if not specs:
            await store.set_line_item_status(conn, item, LineItemStatus.FROM_STOCK,
                                             mapping_id=mapping_id, reason=None)
            continue
        await print_jobs.insert_order_jobs(conn, tenant_id, item["id"], specs,
                                           await stock.part_tags(conn, tenant_id, mapping_id),
                                           settings.max_print_attempts)
        created += len(specs)
        await store.set_line_item_status(conn, item, LineItemStatus.PRINTING,
                                         mapping_id=mapping_id, parts_total=len(specs),
                                         reason=None)
    return created


async def _settle(order: Order, conn: Connection) -> OrderStatus:
    """Recompute the order from its jobs; a printed order is shipped next."""
    status = await store.recompute(conn, order.tenant_id, order.order_id)
    if status == OrderStatus.READY_FOR_FULFILLMENT:
        await send(conn, ShipOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    return status


# --- payment, holds -------------------------------------------------------------------------


async def _payment(conn: Connection, row: OrderRow) -> Payment:
    settings = await tenant_settings(conn, row.tenant_id)
    return payment_decision(row.financial_status,
                            print_authorized=settings.print_authorized_orders)


async def _may_print(order: Order, conn: Connection) -> bool:
    """Whether the order may expand and print now (its row locked): not held by an operator,
    and paid. An unpaid order waits AWAITING_PAYMENT; a voided one is cancelled."""
    row = await store.get_order(conn, order.order_id, lock=True)
    if row is None or row.hold_reason is not None:
        return False
    payment = await _payment(conn, row)
    if payment == Payment.VOID:
        await send(conn, CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id,
                                     reason="payment voided"))
        return False
    if payment == Payment.WAIT:
        if row.status == OrderStatus.PENDING:
            await store.set_order_status(conn, row, OrderStatus.AWAITING_PAYMENT,
                                         reason=awaiting_reason(row.financial_status))
        return False
    if row.status == OrderStatus.AWAITING_PAYMENT:
        await store.set_order_status(conn, row, OrderStatus.PENDING, reason=None)
    return True


@HANDLERS.command(HoldOrder)
async def hold(order: Order, message: HoldOrder, conn: Connection) -> str:
    """An operator holds the order: nothing more of it starts (its queued jobs wait) until it
    is released; prints already running finish."""
    row = await store.get_order(conn, order.order_id, lock=True)
    if row is None:
        raise NotFound(f"order {order.order_id} not found")
    if ORDER_MACHINE.is_terminal(row.status):
        raise Conflict(f"order is {row.status}; it cannot be held")
    if row.hold_reason is not None:
        raise Conflict(f"order is held already: {row.hold_reason}")
    await _hold(conn, row, message.reason, message.by)
    return row.status.value


async def _hold(conn: Connection, row: OrderRow, reason: str, by: str) -> None:
    await store.set_hold(conn, row, reason, by=by)
    await store.set_order_status(conn, row, OrderStatus.ON_HOLD, reason=reason)


@HANDLERS.command(ReleaseOrder)
async def release(order: Order, message: ReleaseOrder, conn: Connection) -> str:
    """An operator releases a held order: its line items are expanded again against today's
    mappings (and an unpaid order goes back to waiting for its payment)."""
    row = await store.get_order(conn, order.order_id, lock=True)
    if row is None:
        raise NotFound(f"order {order.order_id} not found")
    if row.hold_reason is None and row.status != OrderStatus.ON_HOLD:
        raise Conflict(f"order is {row.status}; only a held order is released")
    await store.set_hold(conn, row, None, by=message.by)
    if await _payment(conn, row) == Payment.WAIT:
        await store.set_order_status(conn, row, OrderStatus.AWAITING_PAYMENT,
                                     reason=awaiting_reason(row.financial_status))
        return row.status.value
    status = await _settle(order, conn)
    await send(conn, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    return status.value


# --- Shopify changes: payment, edits, refunds ------------------------------------------------

STARTED = "printing has started"


@dataclass
class Edit:
    """What one line item's new unit count did."""

    change: LineChange
    applied: bool
    withdrawn: list[dict[str, Any]]
    added_jobs: bool = False
    blocked: str | None = None  # why it was not applied, when not because printing started


async def _payload(order: Order, conn: Connection, inbox_id: int) -> bytes | None:
    delivery = await inbox.delivery(conn, order.tenant_id, inbox_id)
    return None if delivery is None else delivery.body


@HANDLERS.command(ApplyShopifyOrder)
async def shopify_changed(order: Order, message: ApplyShopifyOrder, conn: Connection) -> str:
    """A newer Shopify order: contact and address; payment (paid releases a waiting order,
    voided cancels it); line items edited (unstarted jobs follow; a change to what already
    prints is recorded and holds the order). An older payload changes nothing."""
    body = await _payload(order, conn, message.inbox_id)
    if body is None:
        return "no delivery"
    payload = ShopifyOrder.model_validate_json(body)
    row = await store.get_order(conn, order.order_id, lock=True)
    assert row is not None
    if ORDER_MACHINE.is_terminal(row.status):
        return f"order {row.status.value.lower()}"
    before = await _payment(conn, row)
    if not await store.update_order(conn, order.tenant_id, payload):
        return "stale"
    row.financial_status = payload.financial_status or row.financial_status
    now = await _payment(conn, row)
    if now == Payment.VOID:
        await send(conn, CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id,
                                     reason="payment voided"))
        return "voided"
    answer = "updated"
    if now == Payment.PRINT and before != Payment.PRINT:
        released = row.status == OrderStatus.AWAITING_PAYMENT
        await store.record_paid(conn, row, row.financial_status or "paid", released)
        if released:
            await store.set_order_status(conn, row, OrderStatus.PENDING, reason=None)
            await send(conn, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
        answer = "paid"
    if payload.cancelled_at is not None:
        return answer  # a cancellation (its own message) lowers every quantity to 0
    edits = await _edit_lines(order, conn, row, payload)
    if edits:
        answer = await _after_edits(order, conn, row, edits, "edited in Shopify")
    return answer


async def _edit_lines(order: Order, conn: Connection, row: OrderRow,
                      payload: ShopifyOrder) -> list[Edit]:
    """Bring each line item to the units the payload says (added ones are stored PENDING)."""
    stored = {i["shopify_line_item_id"]: i for i in
              await store.line_items(conn, order.tenant_id, order.order_id, lock=True)}
    edits: list[Edit] = []
    for li in payload.line_items:
        item = stored.get(li.id)
        if item is None:
            new = NewLineItem.of(li)
            if new.quantity == 0:
                continue
            await store.insert_line_items(conn, order.tenant_id, order.order_id, [new])
            edits.append(Edit(LineChange(li.id, li.sku, 0, new.quantity), True, [], True))
            continue
        if item["status"] == LineItemStatus.CANCELLED:
            continue
        ordered = max(item["ordered_quantity"] or item["quantity"], li.quantity)
        units = units_to_make(ordered, li.current_quantity, item["refunded_quantity"])
        if units != item["quantity"]:
            item["ordered_quantity"] = ordered
            edits.append(await _set_units(order, conn, row, item, units, "edited in Shopify"))
    return edits


async def _set_units(order: Order, conn: Connection, row: OrderRow, item: dict[str, Any],
                     units: int, why: str) -> Edit:
    """Make `units` of a line item: before it is expanded only the number changes; after,
    jobs not needed any more are withdrawn if they have not started and jobs are added for
    more units. A job that started (or a line item printed and bound for the parcel) is left
    as it is and the change is not applied: the caller holds the order."""
    change = LineChange(item["shopify_line_item_id"], item["sku"], item["quantity"], units)
    status = LineItemStatus(item["status"])
    if status in (*EXPANDABLE, LineItemStatus.SKIPPED):
        if units == 0:
            await store.set_line_item_status(conn, item, LineItemStatus.CANCELLED, reason=why)
        else:
            await store.set_line_item_quantity(conn, item, units, item["ordered_quantity"])
        return Edit(change, True, [])
    if row.status == OrderStatus.READY_FOR_FULFILLMENT or (status in (
            LineItemStatus.PRINTED, LineItemStatus.FROM_STOCK) and units > 0):
        return Edit(change, False, [])  # printed and on its way to the parcel
    from_stock = await stock.ever_reserved(conn, order.tenant_id, item["id"])
    jobs = await print_jobs.line_item_jobs(conn, order.tenant_id, item["id"])
    parts = await conn.fetch("SELECT id::text AS id, quantity FROM mapping_parts"
                             " WHERE tenant_id = $1 AND mapping_id = $2", order.tenant_id,
                             item["mapping_id"])
    limit = copies_beyond([(p["id"], p["quantity"]) for p in parts], max(0, units - from_stock))
    surplus = [j for j in jobs if j["copy_number"] > limit.get(str(j["part_id"]), 0)]
    withdrawn = [j for j in surplus if await print_jobs.withdraw(conn, j, why)]
    started = len(withdrawn) < len(surplus)
    added = False
    if units > item["quantity"] and status != LineItemStatus.FROM_STOCK:
        mapping = await store.mapping_by_id(conn, order.tenant_id, item["mapping_id"]) \
            if item["mapping_id"] is not None else None
        if mapping is None:  # its parts were all removed since: more units cannot be made
            return Edit(change, False, withdrawn, blocked=(
                f"product mapping of SKU {item['sku']!r} has no parts any more; fix it, "
                "then release the order"))
        specs = expand_line_item(str(order.order_id), str(item["id"]), units, mapping,
                                 from_stock=from_stock)
        await print_jobs.insert_order_jobs(
            conn, order.tenant_id, item["id"], specs,
            await stock.part_tags(conn, order.tenant_id, item["mapping_id"]),
            (await tenant_settings(conn, order.tenant_id)).max_print_attempts)
        keys = {spec.key for spec in specs}
        for job in await print_jobs.order_jobs(conn, order.tenant_id, order.order_id,
                                               PrintJobStatus.CANCELLED):
            if job["withdrawn"] and job["job_key"] in keys:  # edited away before, wanted again
                await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                                withdrawn=False, error=None,
                                                queued_at=datetime.now(UTC))
        added = True
    if not started:
        if units == 0:
            await _stock_back(order, conn, [item])
            await store.set_line_item_status(conn, item, LineItemStatus.CANCELLED, reason=why)
        else:
            await store.set_line_item_quantity(conn, item, units, item["ordered_quantity"])
    return Edit(change, not started, withdrawn, added)


async def _after_edits(order: Order, conn: Connection, row: OrderRow, edits: list[Edit],
                       why: str) -> str:
    """Record what changed, hold the order for what could not be applied, take withdrawn jobs
    off the farm, start added work, and recompute the order."""
    refused = [e.change.describe() for e in edits if not e.applied and e.blocked is None]
    blocked = [f"{e.change.describe()} not applied: {e.blocked}" for e in edits
               if not e.applied and e.blocked is not None]
    if (refused or blocked) and row.hold_reason is None:
        started = [f"{why} after {STARTED}: {'; '.join(refused)};"
                   " check the order's jobs, then release it"] if refused else []
        await store.set_hold(conn, row, "; ".join(started + blocked), by="shopify")
    await store.record_edit(conn, row, [
        {"shopify_line_item_id": str(e.change.shopify_line_item_id), "sku": e.change.sku,
         "change": e.change.kind, "before": e.change.before, "after": e.change.after,
         "applied": e.applied} for e in edits], bool(refused or blocked))
    on_farm = [j["id"] for e in edits for j in e.withdrawn if j["farm_queue_item_id"]]
    if on_farm:
        await send(conn, WithdrawJobs(tenant_id=order.tenant_id, order_id=order.order_id,
                                      print_job_ids=on_farm))
    await _settle(order, conn)
    if any(e.added_jobs for e in edits):
        await send(conn, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    return "held" if refused or blocked else "edited"


@HANDLERS.command(ApplyRefund)
async def refund(order: Order, message: ApplyRefund, conn: Connection) -> str:
    """A Shopify refund: refunded units' unstarted jobs are cancelled (a refunded unit already
    printing holds the order for an operator); a refund of everything cancels the order as
    orders/cancelled does. Each refund is applied once."""
    body = await _payload(order, conn, message.inbox_id)
    if body is None:
        return "no delivery"
    payload = ShopifyRefund.model_validate_json(body)
    if not await store.add_refund(conn, order.tenant_id, order.order_id, payload.id):
        return "already applied"
    row = await store.get_order(conn, order.order_id, lock=True)
    assert row is not None
    items = {i["shopify_line_item_id"]: i for i in
             await store.line_items(conn, order.tenant_id, order.order_id, lock=True)}
    refunded = {}
    for line in payload.refund_line_items:
        item = items.get(line.line_item_id)
        if item is not None and line.quantity > 0:
            await store.add_refunded_units(conn, item, line.quantity)
            refunded[line.line_item_id] = line.quantity
    full = bool(items) and all(
        i["refunded_quantity"] >= (i["ordered_quantity"] or i["quantity"])
        for i in items.values() if i["status"] != LineItemStatus.SKIPPED)
    if ORDER_MACHINE.is_terminal(row.status) or full:
        await store.record_refund(conn, row, payload.id, [
            {"shopify_line_item_id": str(k), "quantity": v, "jobs_withdrawn": 0}
            for k, v in refunded.items()], full)
        if full and not ORDER_MACHINE.is_terminal(row.status):
            await send(conn, CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id,
                                         reason="refunded in full"))
            return "cancelling"
        return "recorded"
    edits = []
    for line_id in refunded:
        item = items[line_id]
        if item["status"] == LineItemStatus.CANCELLED:
            continue
        units = min(item["quantity"], (item["ordered_quantity"] or item["quantity"])
                    - item["refunded_quantity"])
        if units != item["quantity"]:
            edits.append(await _set_units(order, conn, row, item, max(0, units), "refunded"))
    await store.record_refund(conn, row, payload.id, [
        {"shopify_line_item_id": str(k), "quantity": v,
         "jobs_withdrawn": sum(len(e.withdrawn) for e in edits
                               if e.change.shopify_line_item_id == k)}
        for k, v in refunded.items()], False)
    if not edits:
        return "recorded"
    return "held" if await _after_edits(order, conn, row, edits, "refunded") == "held" \
        else "refunded"


@HANDLERS.step(WithdrawJobs)
async def withdraw_jobs(order: Order, message: WithdrawJobs) -> int:
    """Remove the queue items of jobs an edit or refund cancelled (idempotent: an item already
    gone is gone)."""
    async with order.pool.acquire() as conn:
        jobs = [j for j in await print_jobs.order_jobs(conn, order.tenant_id, order.order_id,
                                                       PrintJobStatus.CANCELLED)
                if j["id"] in message.print_job_ids and j["farm_queue_item_id"] is not None]
    if not jobs:
        return 0
    sp = await _integration(order, SimplyPrintSettings)
    async with sp.client() as client:
        await farm.withdraw_jobs(client, jobs, stop_printing=False)
    return len(jobs)


# --- printing -----------------------------------------------------------------------------


@HANDLERS.step(StartOrder)
async def start(order: Order, message: StartOrder) -> int:
    """Resolve mappings, create the jobs, queue them; then put them on the farm."""
    if ORDER_MACHINE.is_terminal(await _status(order)):
        return 0
    async with order.pool.acquire() as conn, conn.transaction():
        if not await _may_print(order, conn):
            return 0
        await expand(conn, order.tenant_id, order.order_id)
        for job in await print_jobs.order_jobs(conn, order.tenant_id, order.order_id,
                                               PrintJobStatus.PENDING):
            await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                            queued_at=datetime.now(UTC))
        await _settle(order, conn)  # served entirely from stock: ships without printing
    placed: int = await submit(order, order.submit_jobs())
    return placed


@HANDLERS.step(SubmitJobs)
async def submit(order: Order, message: SubmitJobs) -> int:
    """Put queued jobs that are not on the farm yet into SimplyPrint's queue, then move the
    order's waiting items ahead of the stock items there (order jobs print before stock jobs;
    a redelivery after a failed move moves them again)."""
    async with order.pool.acquire() as conn:
        waiting = await print_jobs.order_jobs(conn, order.tenant_id, order.order_id,
                                              PrintJobStatus.QUEUED)
    row = await store.get_order(order.pool, order.order_id)
    if not waiting or row is None or ORDER_MACHINE.is_terminal(row.status) or row.hold_reason:
        return 0  # nothing to place (a held order needs no farm yet)
    sp = await _integration(order, SimplyPrintSettings)
    if sp.dispatch_mode != "simplyprint_queue":
        return 0  # smart dispatch: printers pull from our queue
    jobs = [j for j in waiting if j["farm_queue_item_id"] is None]
    async with sp.client() as client:
        placed = await farm.queue_jobs(order.pool, client, jobs) if jobs else {}
        async with order.pool.acquire() as conn, conn.transaction():
            for job_id, item_id in placed.items():
                await print_jobs.set_queue_item(conn, job_id, item_id)
        items = [placed.get(j["id"], j["farm_queue_item_id"]) for j in waiting]
        await farm.put_ahead_of_stock(client, [int(i) for i in items if i is not None])
    return len(placed)


@HANDLERS.command(JobStatusReport)
async def job_status(order: Order, message: JobStatusReport, conn: Connection) -> str:
    """A farm event (webhook or reconciliation) for one of this order's jobs."""
    job = await print_jobs.lock_order_job(conn, order.tenant_id, order.order_id,
                                          message.print_job_id)
    if job is None:
        return "unknown job"
    if message.queue_item_id is not None and \
            job["farm_queue_item_id"] not in (None, message.queue_item_id):
        return "stale: an earlier attempt"
    status = PrintJobStatus(message.status)
    cancelled = await _status(order, conn) == OrderStatus.CANCELLED
    if cancelled and status != PrintJobStatus.COMPLETED:
        return "order cancelled"
    at = farm_time(message.at, datetime.now(UTC))
    links = {k: v for k, v in (("farm_job_uid", message.farm_job_uid),
                               ("farm_printer_id", message.farm_printer_id)) if v}
    if status == PrintJobStatus.PRINTING:
        changed = await print_jobs.set_job_status(conn, job, status, started_at=at,
                                                  status_at=at, **links)
    elif status == PrintJobStatus.COMPLETED:
        changed = await print_jobs.set_job_status(conn, job, status, completed_at=at,
                                                  status_at=at, **links)
    else:
        changed = await _failed(order, conn, job, status, message.error or message.status, at)
    if changed:
        await _settle(order, conn)
        if cancelled:
            await _late_print(order, conn, job)
    return "applied" if changed else "ignored"


async def _failed(order: Order, conn: Connection, job: dict[str, Any], status: PrintJobStatus,
                  error: str, at: datetime) -> bool:
    """A failed print goes back to the queue until its attempts are used up."""
    if not await print_jobs.set_job_status(conn, job, status, error=error, status_at=at,
                                           attempts=job["attempts"] + 1):
        return False
    if job["attempts"] + 1 < job["max_attempts"]:
        await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                        farm_queue_item_id=None, farm_job_uid=None,
                                        farm_printer_id=None)
        await send(conn, order.submit_jobs())
    return True


@HANDLERS.command(RetryJob)
async def retry(order: Order, message: RetryJob, conn: Connection) -> str:
    """Operator requeue of a failed or cancelled job; revives a FAILED order."""
    job = await print_jobs.lock_order_job(conn, order.tenant_id, order.order_id,
                                          message.print_job_id)
    if job is None:
        raise NotFound(f"print job {message.print_job_id} is not in this order")
    if await _status(order, conn) == OrderStatus.CANCELLED:
        raise Conflict("the order is cancelled; its jobs cannot be retried")
    # Attempts keep counting (each submission's queue note must be new); the budget grows.
    budget = (await tenant_settings(conn, order.tenant_id)).max_print_attempts
    if not await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                           max_attempts=job["attempts"] + budget,
                                           farm_queue_item_id=None, farm_job_uid=None,
                                           farm_printer_id=None, error=None):
        raise Conflict(f"print job is {job['status']}; only FAILED or CANCELLED retry")
    for item in await store.line_items(conn, order.tenant_id, order.order_id,
                                       LineItemStatus.FAILED, lock=True):
        if item["id"] == job["line_item_id"]:
            await store.set_line_item_status(conn, item, LineItemStatus.PRINTING, reason=None)
    await store.recompute(conn, order.tenant_id, order.order_id)
    await send(conn, order.submit_jobs())
    return "queued"


# --- operator commands on one job -----------------------------------------------------------


async def _operator_job(order: Order, conn: Connection, job_id: uuid.UUID) -> dict[str, Any]:
    job = await print_jobs.lock_order_job(conn, order.tenant_id, order.order_id, job_id)
    if job is None:
        raise NotFound(f"print job {job_id} not found")
    return job


@HANDLERS.command(CancelJob)
async def cancel_job(order: Order, message: CancelJob, conn: Connection) -> str:
    """An operator cancels one job for good; a printer running it is stopped once this change
    is committed (the farm's echo of the stop then changes nothing more)."""
    job = await _operator_job(order, conn, message.print_job_id)
    before = dict(job)
    if not await print_jobs.set_job_status(conn, job, PrintJobStatus.CANCELLED,
                                           error=message.reason):
        raise Conflict(f"print job {job['id']} is {job['status']}; it cannot be cancelled")
    await _settle(order, conn)
    await record(conn, EventType.PRINT_JOB_QUEUE_CHANGED, order.tenant_id, {
        "action": "cancel", "print_job_ids": [str(job["id"])],
        "before": {"status": before["status"]}, "after": {"status": job["status"]}},
        subject=("print_job", job["id"]))
    if before["printer_id"] is not None and before["status"] in ON_PRINTER:
        await send(conn, ControlPrinter(tenant_id=order.tenant_id, printer_id=before["printer_id"],
                                        action="cancel", comment=message.reason))
    return str(job["status"])


@HANDLERS.command(ForceJobStatus)
async def force_status(order: Order, message: ForceJobStatus, conn: Connection) -> str:
    """Admin override of a job's status past its transition table (audited); a printer the job
    leaves is told to let go of it."""
    status = PrintJobStatus(message.status)
    job = await _operator_job(order, conn, message.print_job_id)
    printer_id = job["printer_id"]
    if not await print_jobs.force_job_status(conn, job, status, reason=message.reason,
                                             by=message.by):
        raise Conflict(f"print job {job['id']} is already {status}")
    if printer_id is not None and job["printer_id"] is None:
        await send(conn, ReleasePrinter(tenant_id=order.tenant_id, printer_id=printer_id,
                                        print_job_id=job["id"]))
    await _settle(order, conn)
    return status.value


# --- shipping -----------------------------------------------------------------------------

RETRY_ACTION = "retry shipping: POST /api/v1/orders/{order_id}/ship"


def _connect_action(order: Order, service: str) -> str:
    retry = RETRY_ACTION.format(order_id=order.order_id)
    return f"connect {service} (PUT /api/v1/integrations/{service}), then {retry}"


def _action(order: Order, error: Exception | None = None) -> str:
    """What an operator does about a refused shipment or fulfilment."""
    retry = RETRY_ACTION.format(order_id=order.order_id)
    specific = getattr(error, "action", None)
    return f"{specific}; {retry}" if isinstance(specific, str) else \
        f"check the address and the integration settings, then {retry}"


@HANDLERS.step(ShipOrder)
async def ship(order: Order, message: ShipOrder) -> str:
    """Shipment and label at Sendcloud (v2 parcel or v3 shipment, per tenant), then the Shopify
    fulfilment with tracking. A refusal leaves a visible state with its reason, an event and an
    operator action; a transient failure raises, so the outbox retries with backoff."""
    if await _status(order) != OrderStatus.READY_FOR_FULFILLMENT:
        return "not ready"
    async with order.pool.acquire() as conn:
        shipment = await shipments.ensure_shipment(conn, order.tenant_id, order.order_id)
    if shipment.status == ShipmentStatus.FAILED:
        return "shipment failed: waiting for an operator's retry"
    if shipment.parcel_id is None:
        await _create_parcel(order, shipment)
        if shipment.parcel_id is None:
            return "parcel failed"
    if shipment.shopify_fulfillment_id is None and not await _fulfil(order, shipment):
        return "fulfilment refused"
    await _sync_shopify(order)  # what the carrier said before the fulfilment existed
    return "fulfilled"


async def _create_parcel(order: Order, shipment: ShipmentRow) -> None:
    """Create the shipment and label through the tenant's API version (Sendcloud finds a
    repeat by the reference) and store them on `shipment`; a refusal marks it FAILED, and so
    does a tenant without Sendcloud (retried for ever, it would wait in silence)."""
    try:
        sc = await _integration(order, SendcloudSettings)
    except IntegrationMissing as missing:
        await _shipment_failed(order, shipment, f"cannot create the shipment: {missing}",
                               _connect_action(order, "sendcloud"), shipment.api_version)
        return
    settings = await tenant_settings(order.pool, order.tenant_id)
    row = await store.get_order(order.pool, order.order_id)
    assert row is not None
    grams = await order.pool.fetch(
        """SELECT mp.grams FROM print_jobs j JOIN mapping_parts mp ON mp.id = j.part_id
           WHERE j.tenant_id = $1 AND j.order_id = $2 AND NOT j.withdrawn""",
        order.tenant_id, order.order_id)
    weight = parcel_weight_kg([g["grams"] for g in grams], settings.packaging_grams)
    boxes = await order.pool.fetch(
        """SELECT DISTINCT m.packaging_cm FROM line_items li
             JOIN product_mappings m ON m.id = li.mapping_id
            WHERE li.tenant_id = $1 AND li.order_id = $2 AND li.status <> 'CANCELLED'
              AND m.packaging_cm IS NOT NULL""", order.tenant_id, order.order_id)
    dims = parcel_dimensions([b["packaging_cm"] for b in boxes],
                             settings.parcel_dimensions_cm or sc.parcel_dimensions_cm)
    delivery = row.delivery or CheckoutDelivery()
    rule = choose_method(settings.shipping_methods, delivery)
    address = ShopifyAddress.model_validate(row.shipping_address or {})
    street, number = split_street(address.address1 or "")
    request = ShipmentOrder(
        reference=shipment.external_reference, weight_kg=weight, order_number=row.name,
        total_price=row.total_price, currency=row.currency, dimensions_cm=dims,
        shipping_method_id=rule.shipping_method_id if rule else None,
        shipping_option_code=rule.shipping_option_code if rule else None,
        service_point_id=delivery.service_point_id, post_number=delivery.post_number,
        destination=Destination(
            name=address.full_name, company=address.company, street=street,
            house_number=number, address_2=address.address2 or None, city=address.city or "",
            postal_code=address.zip or "", country=address.country_code or "",
            province_code=address.province_code, phone=address.phone, email=row.email))
    try:
        async with sc.shipping() as carrier:
            created = await carrier.create(request)
    except PermanentError as error:
        await note_failure(order.pool, order.tenant_id, error)
        await _shipment_failed(order, shipment, f"Sendcloud refused the shipment: {error}",
                               _action(order, error), sc.api_version)
        return
    except TransientError as error:
        # The outbox redelivers ShipOrder with the one backoff (forma3d.retry); after the
        # tenant's limit of failures in a row the shipment is FAILED for an operator's retry.
        reason = f"Sendcloud did not create the shipment: {error}"
        async with order.pool.acquire() as conn, conn.transaction():
            failures = await shipments.count_create_failure(conn, shipment, reason)
        if failures < settings.shipment_create_attempts:
            raise
        await _shipment_failed(
            order, shipment, f"{reason} (failed {failures} times in a row)",
            f"check Sendcloud's status and the integration settings, then "
            f"{RETRY_ACTION.format(order_id=order.order_id)}", sc.api_version)
        return
    async with order.pool.acquire() as conn, conn.transaction():
        locked = await shipments.get_shipment(conn, order.tenant_id, order.order_id, lock=True)
        assert locked is not None
        status = created.status
        if status != locked.status and not SHIPMENT_MACHINE.can(locked.status, status):
            status = locked.status  # e.g. a webhook got there first: keep it, store the parcel
        await shipments.record_parcel(conn, locked, Parcel(
            created.parcel_id, created.tracking_number, created.tracking_url, created.carrier,
            weight, created.label, created.status_id, created.api_version,
            created.shipment_id, created.status_code,
            shipping_method=_method_name(sc, request),
            service_point_id=request.service_point_id), status)
    shipment.__dict__.update(locked.__dict__)


def _method_name(sc: SendcloudSettings, request: ShipmentOrder) -> str | None:
    """The Sendcloud method the shipment was asked for (None: the account's shipping rules)."""
    if sc.api_version == "v2":
        method = request.shipping_method_id or sc.shipping_method_id
        return None if method is None else str(method)
    return request.shipping_option_code or sc.shipping_option_code


async def _shipment_failed(order: Order, shipment: ShipmentRow, reason: str, action: str,
                           api_version: str) -> None:
    await _refused(order, shipment, reason, lambda conn, locked: shipments.fail_shipment(
        conn, locked, reason, action, api_version))


async def _refused(order: Order, shipment: ShipmentRow, reason: str,
                   record: Callable[[Connection, ShipmentRow], Awaitable[object]]) -> None:
    """`record` on the locked shipment and the reason on the order, in one transaction."""
    async with order.pool.acquire() as conn, conn.transaction():
        locked = await shipments.get_shipment(conn, order.tenant_id, order.order_id, lock=True)
        assert locked is not None
        await record(conn, locked)
        row = await store.get_order(conn, order.order_id, lock=True)
        assert row is not None
        await store.set_order_status(conn, row, row.status, reason=reason)
    shipment.__dict__.update(locked.__dict__)


async def _fulfil(order: Order, shipment: ShipmentRow) -> bool:
    """Fulfil the Shopify order with the tracking number; False when Shopify refused it (the
    reason is on the shipment and the order, with an event naming the operator's action)."""
    shopify_id = await order.pool.fetchval(
        "SELECT shopify_order_id FROM orders WHERE id = $1", order.order_id)
    if shopify_id is None:  # a manual order: shipped by Sendcloud, nothing to fulfil in Shopify
        async with order.pool.acquire() as conn, conn.transaction():
            await _fulfilled(order, conn, shipment, None)
        return True
    try:
        shop = await _integration(order, ShopifySettings)
    except IntegrationMissing as missing:
        await _fulfilment_refused(order, shipment, f"cannot fulfil in Shopify: {missing}", None,
                                  _connect_action(order, "shopify"))
        return False
    number = shipment.tracking_number or ""
    tracking = TrackingInfo(number=number, url=shipment.tracking_url, company=shipment.carrier)
    try:
        async with shop.client() as client:
            open_orders = [fo for fo in await client.get_fulfillment_orders(shopify_id)
                           if fo.status in ("open", "in_progress")]
            if open_orders:
                fulfillment = await client.create_fulfillment(
                    shopify_id, [FulfillmentOrderLines(fo.id) for fo in open_orders], tracking)
                fulfillment_id: int | None = fulfillment.id
            else:
                found = await client.find_fulfillment(shopify_id, number)
                fulfillment_id = found.id if found else None
    except PermanentError as error:
        await note_failure(order.pool, order.tenant_id, error)
        await _fulfilment_refused(order, shipment, f"Shopify refused the fulfilment: {error}",
                                  error.status, _action(order, error))
        return False
    async with order.pool.acquire() as conn, conn.transaction():
        await shipments.set_fulfilment(conn, shipment, fulfillment_id)
        await _fulfilled(order, conn, shipment, fulfillment_id)
    return True


async def _fulfilment_refused(order: Order, shipment: ShipmentRow, reason: str,
                              http_status: int | None, action: str) -> None:
    """The reason on the shipment and the order, with `shipment.fulfilment-failed` naming the
    operator's action."""
    await _refused(order, shipment, reason, lambda conn, locked: shipments.fulfilment_refused(
        conn, locked, reason, http_status, action))


async def _fulfilled(order: Order, conn: Connection, shipment: ShipmentRow,
                     fulfillment_id: int | None) -> None:
    row = await store.get_order(conn, order.order_id, lock=True)
    assert row is not None
    if ORDER_MACHINE.can(row.status, OrderStatus.FULFILLED):
        await _consume_stock(conn, order.order_id, order.tenant_id)
        await store.set_order_status(
            conn, row, OrderStatus.FULFILLED, reason=None,
            detail={"shopify_fulfillment_id": None if fulfillment_id is None
                    else str(fulfillment_id), "tracking_number": shipment.tracking_number})


@HANDLERS.command(RetryShipment)
async def retry_shipment(order: Order, message: RetryShipment, conn: Connection) -> str:
    """An operator retries shipping: a FAILED shipment starts over under a new reference, a
    refused fulfilment is tried again; either way a ShipOrder follows in this transaction."""
    row = await store.get_order(conn, order.order_id, lock=True)
    if row is None:
        raise NotFound(f"order {order.order_id} not found")
    if row.status != OrderStatus.READY_FOR_FULFILLMENT:
        raise Conflict(f"order is {row.status}; only an order ready for fulfilment ships")
    await shipments.ensure_shipment(conn, order.tenant_id, order.order_id)
    shipment = await shipments.get_shipment(conn, order.tenant_id, order.order_id, lock=True)
    assert shipment is not None
    if shipment.status == ShipmentStatus.FAILED:
        await shipments.restart_shipment(conn, shipment, by=message.by)
        answer = "shipment restarted"
    elif shipment.parcel_id is None or shipment.shopify_fulfillment_id is None:
        answer = "shipping again"
    else:
        raise Conflict("the order is shipped and fulfilled already")
    await store.set_order_status(conn, row, row.status, reason=None)
    await send(conn, ShipOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    return answer


@HANDLERS.command(ShipmentStatusReport)
async def shipment_status(order: Order, message: ShipmentStatusReport, conn: Connection) -> str:
    """A Sendcloud status (and tracking) report; older timestamps than the one applied are
    ignored. A fulfilled order whose tracking or carrier status Shopify has not heard yet gets
    a SyncShopifyTracking in the same transaction."""
    shipment = await shipments.get_shipment(conn, order.tenant_id, order.order_id, lock=True)
    if shipment is None:
        return "no shipment"
    if shipment.status_at is not None and shipment.status_at >= message.at:
        return "stale"
    incoming = status_from_sendcloud(message.status_id) if message.status_id is not None \
        else status_from_sendcloud_code(message.status_code)
    if incoming is None:
        log.warning("unknown Sendcloud status %s for parcel %s kept as is",
                    message.status_id if message.status_id is not None else message.status_code,
                    shipment.parcel_id)
    target = advance(shipment.status, incoming)
    fields: dict[str, Any] = {"carrier_status": message.message, "status_at": message.at}
    if message.status_id is not None:
        fields["carrier_status_id"] = message.status_id
    if message.status_code is not None:
        fields["carrier_status_code"] = message.status_code
    await shipments.apply_carrier_report(
        conn, shipment, target, tracking_number=message.tracking_number,
        tracking_url=message.tracking_url,
        detail={"sendcloud_status_id": message.status_id,
                "sendcloud_status_code": message.status_code,
                "sendcloud_status_message": message.message}, **fields)
    if _shopify_behind(shipment):
        await send(conn, SyncShopifyTracking(tenant_id=order.tenant_id, order_id=order.order_id))
    return target.value


def _shopify_behind(shipment: ShipmentRow) -> bool:
    """Whether the order's Shopify fulfilment lacks the shipment's tracking or status."""
    if shipment.shopify_fulfillment_id is None:
        return False
    wanted = shopify_shipment_status(shipment.status, shipment.carrier_status_id)
    return (bool(shipment.tracking_number)
            and shipment.tracking_number != shipment.shopify_tracking_number) \
        or (wanted is not None and wanted != shipment.shopify_shipment_status)


@HANDLERS.step(SyncShopifyTracking)
async def sync_shopify_tracking(order: Order, message: SyncShopifyTracking) -> str:
    """Push the shipment's tracking and carrier status to the order's Shopify fulfilment."""
    return await _sync_shopify(order)


async def _sync_shopify(order: Order) -> str:
    """`update_tracking` when the tracking number changed, a fulfillment event when the status
    Shopify shows is behind (delivered, in transit, ...). Safe to repeat: Shopify takes the same
    tracking twice, and what it got is stored after each call (a crash in between repeats at
    most one event). A refusal is recorded on the shipment (`shipment.fulfilment-failed`)."""
    shipment = await shipments.get_shipment(order.pool, order.tenant_id, order.order_id)
    if shipment is None or not _shopify_behind(shipment):
        return "nothing to tell Shopify"
    fulfillment_id = shipment.shopify_fulfillment_id
    assert fulfillment_id is not None
    shop = await _integration(order, ShopifySettings)
    shopify_id = await order.pool.fetchval(
        "SELECT shopify_order_id FROM orders WHERE id = $1", order.order_id)
    told: list[str] = []
    try:
        async with shop.client() as client:
            number = shipment.tracking_number
            if number and number != shipment.shopify_tracking_number:
                await client.update_tracking(fulfillment_id, TrackingInfo(
                    number=number, url=shipment.tracking_url, company=shipment.carrier))
                async with order.pool.acquire() as conn, conn.transaction():
                    await shipments.shopify_updated(conn, shipment, tracking_number=number)
                told.append(f"tracking {number}")
            wanted = shopify_shipment_status(shipment.status, shipment.carrier_status_id)
            if wanted is not None and wanted != shipment.shopify_shipment_status:
                await client.create_fulfillment_event(shopify_id, fulfillment_id, wanted)
                async with order.pool.acquire() as conn, conn.transaction():
                    await shipments.shopify_updated(conn, shipment, shipment_status=wanted)
                told.append(wanted)
    except PermanentError as error:
        reason = f"Shopify refused the tracking update: {error}"
        async with order.pool.acquire() as conn, conn.transaction():
            await shipments.fulfilment_refused(
                conn, shipment, reason, error.status,
                "update the fulfilment's tracking in Shopify's admin")
        return "tracking refused"
    return "told Shopify: " + ", ".join(told)


# --- cancellation -------------------------------------------------------------------------


@HANDLERS.step(CancelOrder)
async def cancel(order: Order, message: CancelOrder) -> str:
    """Take queued jobs off the farm, stop or keep prints, cancel the parcel, then record it all
    in one transaction that checks the order again under its row lock."""
    status = await _status(order)
    if status == OrderStatus.CANCELLED:
        return "already cancelled"
    ORDER_MACHINE.check(status, OrderStatus.CANCELLED)
    settings = await tenant_settings(order.pool, order.tenant_id)
    async with order.pool.acquire() as conn:
        jobs = await print_jobs.order_jobs(conn, order.tenant_id, order.order_id,
                                           *ACTIVE_JOB_STATUSES)
    # Queued on SimplyPrint, or started on a printer by smart dispatch (no queue item).
    on_farm = [j for j in jobs if j["farm_queue_item_id"] is not None
               or j["farm_job_uid"] or j["farm_printer_id"]]
    if on_farm:
        sp = await _integration(order, SimplyPrintSettings)
        async with sp.client() as client:
            await farm.withdraw_jobs(client, on_farm,
                                     stop_printing=settings.cancel_printing_jobs)
    shipment = await shipments.get_shipment(order.pool, order.tenant_id, order.order_id)
    parcel_status = ShipmentStatus.CANCELLED
    if shipment is not None and shipment.parcel_id is not None:
        sc = await _integration(order, SendcloudSettings)
        # The API that created the shipment cancels it, whatever the tenant uses today.
        made_with = sc.model_copy(update={"api_version": shipment.api_version})
        async with made_with.shipping() as carrier:
            result = await carrier.cancel(shipment.parcel_id, shipment.carrier_shipment_id)
        if result.outcome == CancelOutcome.QUEUED:
            parcel_status = ShipmentStatus.CANCEL_REQUESTED
    async with order.pool.acquire() as conn, conn.transaction():
        row = await store.get_order(conn, order.order_id, lock=True)
        assert row is not None
        if row.status == OrderStatus.CANCELLED:
            return "already cancelled"
        ORDER_MACHINE.check(row.status, OrderStatus.CANCELLED)  # it may have shipped meanwhile
        await _cancel_rows(order, conn, message.reason, settings.cancel_printing_jobs,
                           parcel_status)
        await store.set_order_status(conn, row, OrderStatus.CANCELLED,
                                     reason=message.reason or "cancelled",
                                     detail={"reason": message.reason})
    return "cancelled"


async def _cancel_rows(order: Order, conn: Connection, reason: str | None, stop_printing: bool,
                       parcel_status: ShipmentStatus) -> None:
    """The jobs, line items and shipment of an order being cancelled (order row locked)."""
    for job in await print_jobs.order_jobs(conn, order.tenant_id, order.order_id,
                                           *ACTIVE_JOB_STATUSES):
        if job["status"] == PrintJobStatus.PRINTING and not stop_printing:
            continue  # left to finish; its part goes to stock or scrap
        await print_jobs.set_job_status(conn, job, PrintJobStatus.CANCELLED,
                                        error="order cancelled")
    live = [s for s in LineItemStatus if s != LineItemStatus.CANCELLED]
    items = await store.line_items(conn, order.tenant_id, order.order_id, *live, lock=True)
    await _stock_back(order, conn, items)
    for item in items:
        await store.set_line_item_status(conn, item, LineItemStatus.CANCELLED,
                                         reason=reason or "order cancelled")
    shipment = await shipments.get_shipment(conn, order.tenant_id, order.order_id, lock=True)
    if shipment is not None and SHIPMENT_MACHINE.can(shipment.status, parcel_status):
        await shipments.set_shipment_status(conn, shipment, parcel_status)


# --- stock ---------------------------------------------------------------------------------


async def _stock_back(order: Order, conn: Connection, items: list[dict[str, Any]]) -> None:
    """A cancelled order's reservations go back to the shelf; with Stock Management on, whole
    units already printed for it go to stock or scrap (tenant setting), a ledger entry either
    way. Safe to repeat: only outstanding reservations and newly printed units move."""
    settings = await tenant_settings(conn, order.tenant_id)
    mapped = [i for i in items if i["mapping_id"] is not None]
    await stock.lock_items(conn, order.tenant_id, [i["mapping_id"] for i in mapped])
    for item in mapped:
        await stock.release(conn, item, "order cancelled")
        if settings.stock_management_enabled:
            await _return_printed(conn, item, scrap=settings.stock_cancelled_parts == "SCRAP")


async def _return_printed(conn: Connection, item: dict[str, Any], *, scrap: bool) -> None:
    mapping = await stock.mapping(conn, item["tenant_id"], item["mapping_id"])
    if mapping is None:
        return
    done = await conn.fetch(
        "SELECT part_id::text AS part, count(*) AS n FROM print_jobs WHERE tenant_id = $1"
        " AND line_item_id = $2 AND status = 'COMPLETED' GROUP BY part_id",
        item["tenant_id"], item["id"])
    units = units_produced(mapping, {r["part"]: r["n"] for r in done})
    if units > 0:
        await stock.return_printed(conn, item, item["mapping_id"], units, scrap=scrap)


async def _late_print(order: Order, conn: Connection, job: dict[str, Any]) -> None:
    """A print left running when its order was cancelled has finished: its unit may be whole."""
    settings = await tenant_settings(conn, order.tenant_id)
    if not settings.stock_management_enabled:
        return
    for item in await store.line_items(conn, order.tenant_id, order.order_id,
                                       LineItemStatus.CANCELLED):
        if item["id"] == job["line_item_id"] and item["mapping_id"] is not None:
            await _return_printed(conn, item, scrap=settings.stock_cancelled_parts == "SCRAP")


async def _consume_stock(conn: Connection, order_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """The order shipped: the units reserved for it leave the shelf (CONSUMED)."""
    items = await store.line_items(conn, tenant_id, order_id)
    await stock.lock_items(conn, tenant_id, [i["mapping_id"] for i in items if i["mapping_id"]])
    for item in items:
        await stock.consume(conn, item)


ENTITY = EntitySpec("order", load, HANDLERS)
