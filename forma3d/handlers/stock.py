"""The tenant's stock: operator adjustments and scrap, stock settings, stock batches, the
replenishment scheduler's tick, and the stock jobs that build batches (retried like order jobs,
settling their batch when done). Merged into the tenant entity, which owns stock.

Each command is one transaction; every movement is a ledger entry through `store.stock`, every
batch status change goes through `store.stock_batches`, each with its event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from forma3d.db.pool import Connection
from forma3d.domain.inventory.ledger import LedgerError, direction_of
from forma3d.domain.inventory.replenishment import in_quiet_hours, plan
from forma3d.domain.inventory.states import (
    BatchOrigin,
    LedgerType,
    ReferenceType,
    StockBatchStatus,
)
from forma3d.domain.printing.mapping import ProductMapping
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.domain.tenants import TenantSettings
from forma3d.handlers import farm
from forma3d.handlers.catalog import TenantScope
from forma3d.handlers.registry import Handlers
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.printer import ControlPrinter
from forma3d.messaging.refusals import Conflict, Invalid, NotFound
from forma3d.messaging.stock import (
    AdjustStock,
    CancelStockBatch,
    CreateStockBatch,
    ReplenishStock,
    ScrapStock,
    StockJobReport,
    SubmitStockJobs,
    UpdateStockItem,
    UpdateStockSettings,
)
from forma3d.store import outbox, print_jobs, queue, stock, stock_batches
from forma3d.store.integrations import load_integration
from forma3d.store.tenants import tenant_settings

HANDLERS: Handlers[TenantScope] = Handlers()


def _user(by: str | None) -> stock.Reference:
    return stock.Reference(ReferenceType.USER, by, created_by=by)


async def _movement(conn: Connection, tenant: TenantScope, mapping_id: uuid.UUID,
                    kind: LedgerType, quantity: int, reason: str,
                    by: str | None) -> dict[str, Any]:
    try:
        await stock.record(conn, tenant.tenant_id, mapping_id, kind, abs(quantity), _user(by),
                           direction=direction_of(kind, quantity), reason=reason)
    except LookupError:
        raise NotFound(f"product mapping {mapping_id} not found") from None
    except LedgerError as error:
        raise Conflict(str(error)) from None
    level = await stock.level(conn, tenant.tenant_id, mapping_id)
    assert level is not None
    return level


@HANDLERS.command(AdjustStock)
async def adjust(tenant: TenantScope, message: AdjustStock, conn: Connection) -> dict[str, Any]:
    """A signed correction; taking out more than is available (reserved units stay) is a
    Conflict. Returns the product's level."""
    return await _movement(conn, tenant, message.mapping_id, LedgerType.ADJUSTED,
                           message.quantity, message.reason, message.by)


@HANDLERS.command(ScrapStock)
async def scrap(tenant: TenantScope, message: ScrapStock, conn: Connection) -> dict[str, Any]:
    return await _movement(conn, tenant, message.mapping_id, LedgerType.SCRAPPED,
                           message.quantity, message.reason, message.by)


@HANDLERS.command(UpdateStockItem)
async def update_item(tenant: TenantScope, message: UpdateStockItem,
                      conn: Connection) -> dict[str, Any]:
    changes = message.patch.changes()
    try:
        await stock.update_item(conn, tenant.tenant_id, message.mapping_id, changes,
                                by=message.by)
    except LookupError:
        raise NotFound(f"product mapping {message.mapping_id} not found") from None
    except asyncpg.CheckViolationError:
        raise Invalid([("maximum", "must be at least the minimum")]) from None
    level = await stock.level(conn, tenant.tenant_id, message.mapping_id)
    assert level is not None
    return level


@HANDLERS.command(UpdateStockSettings)
async def update_settings(tenant: TenantScope, message: UpdateStockSettings,
                          conn: Connection) -> dict[str, Any]:
    changes = message.patch.model_dump(exclude_none=True)
    current = await tenant_settings(conn, tenant.tenant_id)
    try:
        merged = TenantSettings.model_validate(current.model_dump() | changes)
    except ValidationError as error:
        raise Invalid([(".".join(str(p) for p in e["loc"]), e["msg"])
                       for e in error.errors()]) from None
    await stock.set_tenant_settings(conn, tenant.tenant_id, changes)
    return stock_settings(merged)


def stock_settings(settings: TenantSettings) -> dict[str, Any]:
    return {k: v for k, v in settings.model_dump().items() if k.startswith("stock_")}


# --- batches ------------------------------------------------------------------------------


async def _mapping(conn: Connection, tenant: TenantScope, mapping_id: uuid.UUID
                   ) -> ProductMapping:
    found = await stock.mapping(conn, tenant.tenant_id, mapping_id)
    if found is None:
        raise NotFound(f"product mapping {mapping_id} not found (or has no parts)")
    return found


async def _create(conn: Connection, tenant: TenantScope, new: stock_batches.NewBatch,
                  settings: TenantSettings) -> dict[str, Any]:
    mapping_id = uuid.UUID(new.mapping.mapping_id)
    batch = await stock_batches.create(
        conn, tenant.tenant_id, new, max_attempts=settings.max_print_attempts,
        tags=await stock.part_tags(conn, tenant.tenant_id, mapping_id))
    await outbox.send(conn, SubmitStockJobs(tenant_id=tenant.tenant_id))
    return batch


@HANDLERS.command(CreateStockBatch)
async def create_batch(tenant: TenantScope, message: CreateStockBatch,
                       conn: Connection) -> uuid.UUID:
    mapping = await _mapping(conn, tenant, message.mapping_id)
    settings = await tenant_settings(conn, tenant.tenant_id)
    batch = await _create(conn, tenant, stock_batches.NewBatch(
        mapping, message.units, BatchOrigin.MANUAL, message.reason, message.by), settings)
    batch_id: uuid.UUID = batch["id"]
    return batch_id


@HANDLERS.command(CancelStockBatch)
async def cancel_batch(tenant: TenantScope, message: CancelStockBatch, conn: Connection) -> str:
    """Cancel a batch's unfinished jobs (printers running them are stopped once this commits)
    and the batch; units already printed still go on the shelf."""
    batch = await stock_batches.lock(conn, tenant.tenant_id, message.stock_batch_id)
    if batch is None:
        raise NotFound(f"stock batch {message.stock_batch_id} not found")
    if batch["status"] != StockBatchStatus.IN_PROGRESS:
        raise Conflict(f"stock batch {batch['id']} is {batch['status']}; it cannot be cancelled")
    mapping = await _mapping(conn, tenant, batch["mapping_id"])
    for job in await stock_batches.cancel(conn, batch, mapping, message.reason):
        await outbox.send(conn, ControlPrinter(tenant_id=tenant.tenant_id,
                                               printer_id=job["printer_id"], action="cancel",
                                               comment=message.reason))
    return str(batch["status"])


# --- replenishment --------------------------------------------------------------------------


@HANDLERS.command(ReplenishStock)
async def replenish(tenant: TenantScope, message: ReplenishStock, conn: Connection) -> int:
    """In the tenant's quiet hours, batch every product below its minimum up to its maximum,
    most urgent first; returns the number of batches made. Units already being printed for
    stock count as stock, so a repeated or concurrent tick (redelivery, scheduler restart)
    makes no second batch; the advisory lock serialises ticks even across hosts."""
    settings = await tenant_settings(conn, tenant.tenant_id)
    now = message.at or datetime.now(UTC)
    if not settings.stock_management_enabled or not in_quiet_hours(
            now, settings.stock_time_zone, settings.stock_quiet_start, settings.stock_quiet_end):
        return 0
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('forma3d:replenish:' || $1))",
                       str(tenant.tenant_id))
    made = 0
    for planned in plan(await stock.targets(conn, tenant.tenant_id)):
        mapping = await stock.mapping(conn, tenant.tenant_id, uuid.UUID(planned.mapping_id))
        if mapping is None:
            continue  # a mapping without parts cannot be printed
        await _create(conn, tenant, stock_batches.NewBatch(
            mapping, planned.units, BatchOrigin.REPLENISHMENT, "below minimum stock"), settings)
        made += 1
    return made


# --- stock jobs -----------------------------------------------------------------------------


@HANDLERS.command(StockJobReport)
async def job_report(tenant: TenantScope, message: StockJobReport, conn: Connection) -> str:
    """A stock job's status changed: a failure is queued again while attempts remain (like an
    order job); a finished batch completes, adding its units with one PRODUCED entry."""
    job = await queue.locked_job(conn, tenant.tenant_id, message.print_job_id)
    if job is None or job["stock_batch_id"] is None:
        return "not a stock batch job"
    if message.status is not None:
        if message.queue_item_id is not None and \
                job["farm_queue_item_id"] not in (None, message.queue_item_id):
            return "stale: an earlier attempt"
        at = message.at or datetime.now(UTC)
        status = PrintJobStatus(message.status)
        stamp = {PrintJobStatus.PRINTING: "started_at",
                 PrintJobStatus.COMPLETED: "completed_at"}.get(status, "error")
        links = {k: v for k, v in (("farm_job_uid", message.farm_job_uid),
                                   ("farm_printer_id", message.farm_printer_id)) if v}
        if not await print_jobs.set_job_status(
                conn, job, status, status_at=at, **links,
                **{stamp: message.error or status.value if stamp == "error" else at}):
            return "ignored"
    if job["status"] == PrintJobStatus.FAILED:
        if job["attempts"] + 1 >= job["max_attempts"]:
            return "failed for good"
        await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                        attempts=job["attempts"] + 1, farm_queue_item_id=None,
                                        farm_job_uid=None, farm_printer_id=None)
        await outbox.send(conn, SubmitStockJobs(tenant_id=tenant.tenant_id))
        return "requeued"
    batch = await stock_batches.lock(conn, tenant.tenant_id, job["stock_batch_id"])
    if batch is None:
        return "no batch"
    mapping = await _mapping(conn, tenant, batch["mapping_id"])
    return (await stock_batches.settle(conn, batch, mapping)).value


@HANDLERS.step(SubmitStockJobs)
async def submit(tenant: TenantScope, message: SubmitStockJobs) -> int:
    """Queued stock jobs into SimplyPrint's own queue, when the tenant dispatches that way
    (smart dispatch pulls them from ours, after every order job a printer fits)."""
    pool = tenant.services.pool
    sp = await load_integration(pool, tenant.tenant_id, SimplyPrintSettings)
    if sp is None or sp.dispatch_mode != "simplyprint_queue":
        return 0
    rows = await pool.fetch(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND stock_batch_id IS NOT NULL"
        " AND status = 'QUEUED' AND farm_queue_item_id IS NULL AND NOT held ORDER BY job_key",
        tenant.tenant_id)
    if not rows:
        return 0
    async with sp.client() as client:
        placed = await farm.queue_jobs(pool, client, [dict(r.items()) for r in rows])
    async with pool.acquire() as conn, conn.transaction():
        for job_id, item_id in placed.items():
            await print_jobs.set_queue_item(conn, job_id, item_id)
    return len(placed)
