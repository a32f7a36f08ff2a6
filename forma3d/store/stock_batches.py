"""Stock batches: the STOCK-purpose print jobs that build one product to stock, and the one
place a batch's status changes (machine check, conditional update, events).

A batch settles when its jobs do: all completed (or some cancelled) -> COMPLETED, and the whole
units its completed jobs make are added with one PRODUCED entry in the same transaction.
Written by the tenant entity, which owns stock and the jobs no order owns.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.inventory.batch import batch_outcome, expand_stock_batch, units_produced
from forma3d.domain.inventory.states import (
    STOCK_BATCH_MACHINE,
    BatchOrigin,
    LedgerType,
    ReferenceType,
    StockBatchStatus,
)
from forma3d.domain.printing.mapping import ProductMapping
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.store import print_jobs, stock
from forma3d.store.events import record

Row = dict[str, Any]
ON_PRINTER = (PrintJobStatus.ASSIGNED, PrintJobStatus.PRINTING)


@dataclass(frozen=True, slots=True)
class NewBatch:
    mapping: ProductMapping
    units: int
    origin: BatchOrigin = BatchOrigin.MANUAL
    reason: str | None = None
    created_by: str | None = None


async def create(conn: Connection, tenant_id: uuid.UUID, batch: NewBatch, *,
                 max_attempts: int, tags: Mapping[str, list[str]]) -> Row:
    """A batch IN_PROGRESS with its jobs QUEUED (the smart queue takes them after every order
    job a printer fits); one stock.replenishment-scheduled event per job."""
    mapping_id = uuid.UUID(batch.mapping.mapping_id)
    if not await stock.ensure_item(conn, tenant_id, mapping_id):
        raise LookupError(f"product mapping {mapping_id} not found")
    batch_id = uuid.uuid4()
    row = record_to_dict(await conn.fetchrow(
        """INSERT INTO stock_batches (id, tenant_id, mapping_id, units, origin, reason,
                                      created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        batch_id, tenant_id, mapping_id, batch.units, batch.origin.value, batch.reason,
        batch.created_by))
    specs = expand_stock_batch(str(batch_id), batch.mapping, batch.units)
    await conn.executemany(
        """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, stock_batch_id, part_id,
                                   copy_number, file_id, required_tags, max_attempts)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        [(uuid.uuid4(), tenant_id, s.key, s.purpose.value, batch_id, uuid.UUID(s.part_id),
          s.copy_number, uuid.UUID(s.file_id), tags.get(s.part_id, []), max_attempts)
         for s in specs])
    new_jobs = await jobs(conn, tenant_id, batch_id)
    now = datetime.now(UTC)
    await record(conn, EventType.STOCK_BATCH_STATUS_CHANGED, tenant_id, {
        "stock_batch_id": str(batch_id), "product_id": str(mapping_id), "previous_status": None,
        "new_status": StockBatchStatus.IN_PROGRESS.value, "units": batch.units,
        "reason": batch.reason}, subject=("stock_batch", batch_id))
    for job in new_jobs:
        await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED, queued_at=now)
        await record(conn, EventType.STOCK_REPLENISHMENT_SCHEDULED, tenant_id, {
            "stock_batch_id": str(batch_id), "print_job_id": str(job["id"]),
            "product_id": str(mapping_id), "part_id": str(job["part_id"]),
            "copy_number": job["copy_number"], "sku": batch.mapping.sku},
            subject=("stock_batch", batch_id))
    return row


async def lock(conn: Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Row | None:
    row = await conn.fetchrow(
        "SELECT * FROM stock_batches WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant_id, batch_id)
    return record_to_dict(row) if row else None


async def jobs(db: Pool | Connection, tenant_id: uuid.UUID, batch_id: uuid.UUID,
               *statuses: PrintJobStatus) -> list[Row]:
    wanted = [s.value for s in statuses] or [s.value for s in PrintJobStatus]
    rows = await db.fetch(
        "SELECT * FROM print_jobs WHERE tenant_id = $1 AND stock_batch_id = $2"
        " AND status = ANY($3) ORDER BY job_key", tenant_id, batch_id, wanted)
    return [record_to_dict(r) for r in rows]


async def set_status(conn: Connection, batch: Row, status: StockBatchStatus,
                     **fields: Any) -> bool:
    """Move a batch (a locked row, updated in place) through STOCK_BATCH_MACHINE; raises
    IllegalTransition naming both states; False if the row had moved meanwhile."""
    current = StockBatchStatus(batch["status"])
    STOCK_BATCH_MACHINE.check(current, status)
    stamp = {StockBatchStatus.COMPLETED: ", completed_at = now()",
             StockBatchStatus.CANCELLED: ", cancelled_at = now()"}.get(status, "")
    sets = "".join(f", {k} = ${i}" for i, k in enumerate(fields, start=4))
    row = await conn.fetchrow(
        f"UPDATE stock_batches SET status = $3, updated_at = now(){stamp}{sets}"
        " WHERE id = $1 AND status = $2 RETURNING *",
        batch["id"], current.value, status.value, *fields.values())
    if row is None:
        return False
    batch.update(record_to_dict(row))
    await record(conn, EventType.STOCK_BATCH_STATUS_CHANGED, batch["tenant_id"], {
        "stock_batch_id": str(batch["id"]), "product_id": str(batch["mapping_id"]),
        "previous_status": current.value, "new_status": status.value, "units": batch["units"],
        "reason": fields.get("reason")}, subject=("stock_batch", batch["id"]))
    return True


async def _produce(conn: Connection, batch: Row, mapping: ProductMapping,
                   batch_jobs: Sequence[Row]) -> int:
    """The PRODUCED entry of the whole units the batch's completed jobs make."""
    done = Counter(str(j["part_id"]) for j in batch_jobs
                   if j["status"] == PrintJobStatus.COMPLETED)
    units = units_produced(mapping, done)
    if units > 0:
        await stock.record(conn, batch["tenant_id"], batch["mapping_id"], LedgerType.PRODUCED,
                           units, stock.Reference(ReferenceType.STOCK_BATCH, str(batch["id"]),
                                                  stock_batch_id=batch["id"]),
                           reason=f"stock batch {batch['id']}")
    return units


async def settle(conn: Connection, batch: Row, mapping: ProductMapping) -> StockBatchStatus:
    """Complete the batch once all its jobs are settled: stock rises with one PRODUCED entry
    and `stock.batch-completed`, in this transaction. Idempotent (only IN_PROGRESS moves)."""
    if batch["status"] != StockBatchStatus.IN_PROGRESS:
        return StockBatchStatus(batch["status"])
    batch_jobs = await jobs(conn, batch["tenant_id"], batch["id"])
    outcome = batch_outcome(PrintJobStatus(j["status"]) for j in batch_jobs)
    if outcome == StockBatchStatus.IN_PROGRESS:
        return outcome
    units = await _produce(conn, batch, mapping, batch_jobs)
    await set_status(conn, batch, outcome, units_produced=units)
    if outcome == StockBatchStatus.COMPLETED:
        await record(conn, EventType.STOCK_BATCH_COMPLETED, batch["tenant_id"], {
            "stock_batch_id": str(batch["id"]), "product_id": str(batch["mapping_id"]),
            "sku": mapping.sku, "units_produced": units,
            "completed_jobs": sum(j["status"] == PrintJobStatus.COMPLETED for j in batch_jobs),
            "total_jobs": len(batch_jobs)}, subject=("stock_batch", batch["id"]))
    return outcome


async def cancel(conn: Connection, batch: Row, mapping: ProductMapping, reason: str) -> list[Row]:
    """Cancel the batch's unfinished jobs and the batch; whole units already printed still go
    on the shelf (PRODUCED). Returns the jobs that were on a printer (to stop)."""
    on_printer = []
    for job in await jobs(conn, batch["tenant_id"], batch["id"], PrintJobStatus.PENDING,
                          PrintJobStatus.QUEUED, PrintJobStatus.ASSIGNED,
                          PrintJobStatus.PRINTING):
        before = dict(job)
        cancelled = await print_jobs.set_job_status(conn, job, PrintJobStatus.CANCELLED,
                                                    error=reason)
        if cancelled and before["printer_id"] is not None and before["status"] in ON_PRINTER:
            on_printer.append(before)
    units = await _produce(conn, batch, mapping, await jobs(conn, batch["tenant_id"], batch["id"]))
    await set_status(conn, batch, StockBatchStatus.CANCELLED, units_produced=units, reason=reason)
    return on_printer
