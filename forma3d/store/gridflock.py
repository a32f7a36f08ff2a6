"""GridFlock intake inside order expansion: a GRID-CUSTOM line item maps through its canonical SKU.

A repeat size finds its product mapping at once. A new size parks the line item GENERATING and
requests the size's pipeline job; the job row is unique per tenant and SKU and its `gridflock.run`
message is written in the same transaction, so concurrent orders for one new size start exactly
one pipeline, and none is lost to a crash. Bad properties, sizes outside the tenant's limits, a
failed pipeline or the feature switched off hold the line item (NEEDS_MAPPING) with the reason.
"""

from __future__ import annotations

import uuid
from typing import Any

from forma3d import logs
from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.gridflock.errors import GridflockError
from forma3d.domain.gridflock.profiles import get_profile
from forma3d.domain.gridflock.sku import GridRequest, SizeLimits, parse_line_item
from forma3d.domain.gridflock.states import GridflockJobStatus
from forma3d.domain.orders.states import LineItemStatus
from forma3d.messaging.envelope import Envelope
from forma3d.store.outbox import enqueue
from forma3d.store.tenants import tenant_settings

KIND = "gridflock"
RUN = "gridflock.run"
RETRY = "gridflock.retry"


def entity_key(tenant_id: uuid.UUID | str, sku: str) -> str:
    """One GridFlock entity per tenant and canonical SKU: the single-flight unit."""
    return f"{tenant_id}:{sku}"


def run_message(tenant_id: uuid.UUID | str, sku: str, job_id: uuid.UUID | str) -> Envelope:
    return Envelope(KIND, entity_key(tenant_id, sku), RUN, str(tenant_id),
                    {"job_id": str(job_id)}, correlation_id=logs.correlation_id.get(),
                    durable=True)


async def request_job(conn: Connection, tenant_id: uuid.UUID,
                      request: GridRequest) -> dict[str, Any]:
    """The size's job, created (with its run message) if this is the first order for it."""
    plan = request.plan().as_dict()
    row = await conn.fetchrow(
        """INSERT INTO gridflock_jobs (id, tenant_id, sku, printer_profile, plan)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, sku) DO NOTHING RETURNING *""",
        uuid.uuid4(), tenant_id, request.sku, request.profile.id, plan)
    if row is not None:
        await enqueue(conn, run_message(tenant_id, request.sku, row["id"]))
        return record_to_dict(row)
    found = await conn.fetchrow("SELECT * FROM gridflock_jobs WHERE tenant_id = $1 AND sku = $2",
                                tenant_id, request.sku)
    assert found is not None
    return record_to_dict(found)


def failure_reason(job: dict[str, Any]) -> str:
    return f"GridFlock pipeline for {job['sku']} failed at {job['failed_step']}: {job['error']}"


async def gridflock_intake(conn: Connection, tenant_id: uuid.UUID,
                           item: dict[str, Any]) -> str | None:
    """The canonical SKU to map `item` through when its mapping exists; otherwise park the item
    (GENERATING while its job runs, NEEDS_MAPPING with the reason when held) and return None."""
    from forma3d.store import (
        orders as store,  # store calls this hook; import at use to avoid a cycle
    )

    settings = await tenant_settings(conn, tenant_id)
    if not settings.gridflock_enabled:
        if await store.load_mapping(conn, tenant_id, item["sku"], item["variant_id"]):
            return str(item["sku"])  # a hand-made mapping for the raw SKU still works
        await _park(conn, item, LineItemStatus.NEEDS_MAPPING,
                    "GridFlock custom baseplates are off for this tenant "
                    "(tenant setting gridflock_enabled)")
        return None
    try:
        request = parse_line_item(
            item["properties"] or {}, get_profile(settings.gridflock_printer_profile),
            SizeLimits(settings.gridflock_min_mm, settings.gridflock_max_mm))
        sku = request.sku
        if item.get("mapping_sku") != sku:
            await conn.execute("UPDATE line_items SET mapping_sku = $2 WHERE id = $1",
                               item["id"], sku)
            item["mapping_sku"] = sku
        if await store.load_mapping(conn, tenant_id, sku, item["variant_id"]) is not None:
            return sku
        job = await request_job(conn, tenant_id, request)
    except GridflockError as error:  # bad properties, size outside the limits, unplannable
        await _park(conn, item, LineItemStatus.NEEDS_MAPPING, f"GridFlock: {error}")
        return None
    status = GridflockJobStatus(job["status"])
    if status == GridflockJobStatus.FAILED:
        await _park(conn, item, LineItemStatus.NEEDS_MAPPING, failure_reason(job))
    elif status == GridflockJobStatus.COMPLETED:
        await _park(conn, item, LineItemStatus.NEEDS_MAPPING,
                    f"GridFlock job for {sku} completed but its product mapping was removed; "
                    "create a mapping for the SKU")
    else:
        await _park(conn, item, LineItemStatus.GENERATING,
                    f"GridFlock: generating plates for {sku}")
    return None


async def _park(conn: Connection, item: dict[str, Any], status: LineItemStatus,
                reason: str) -> None:
    from forma3d.store import orders as store

    current = LineItemStatus(item["status"])
    if current == status and item.get("reason") == reason:
        return
    if current == LineItemStatus.GENERATING and status == LineItemStatus.NEEDS_MAPPING:
        # The line-item table has no GENERATING -> NEEDS_MAPPING edge: a held item restarts.
        await store.set_line_item(conn, item, LineItemStatus.PENDING)
        item["status"] = current = LineItemStatus.PENDING
    await store.set_line_item(conn, item, status, reason=reason)
    item["status"], item["reason"] = status.value, reason
