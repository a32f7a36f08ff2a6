"""GridFlock intake inside order expansion: the facts looked up, the pure decision
(forma3d.domain.gridflock.intake) applied to the line item.

Called by the order entity's expansion for each GRID-CUSTOM line item, in its transaction. A
new size's job and its `RunPipeline` are written in that same transaction, so concurrent orders
for one new size start exactly one pipeline, and none is lost to a crash.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from forma3d.db.pool import Connection
from forma3d.domain.gridflock.intake import (
    Decision,
    Hold,
    JobFacts,
    MapThrough,
    RequestJob,
    Wait,
    decide,
    read_request,
    switched_off,
    unknown_preset,
)
from forma3d.domain.gridflock.presets import PRESET_NAME
from forma3d.domain.gridflock.sku import GridRequest, preset_name
from forma3d.domain.orders.states import LineItemStatus
from forma3d.domain.tenants import TenantSettings
from forma3d.store import gridflock, gridflock_presets, orders
from forma3d.store.tenants import tenant_settings

Row = dict[str, Any]


async def intake(conn: Connection, tenant_id: uuid.UUID, item: Row) -> str | None:
    """The SKU to map `item` through when its mapping exists; otherwise park the item
    (GENERATING while its job runs, NEEDS_MAPPING with the reason when held) and return None."""
    settings = await tenant_settings(conn, tenant_id)
    decision: Decision
    if not settings.gridflock_enabled:
        raw = await orders.load_mapping(conn, tenant_id, item["sku"], item["variant_id"])
        decision = switched_off(str(item["sku"]), mapping_exists=raw is not None)
    else:
        request = await _read(conn, tenant_id, item, settings)
        if isinstance(request, Hold):
            decision = request
        else:
            await orders.set_line_item_mapping_sku(conn, item, request.sku)
            mapping = await orders.load_mapping(conn, tenant_id, request.sku, item["variant_id"])
            job = None if mapping else await gridflock.find_job(conn, tenant_id, request.sku)
            decision = decide(request, mapping_exists=mapping is not None, job=_facts(job))
            if isinstance(decision, RequestJob):
                job = await gridflock.request_job(conn, tenant_id, decision.request)
                decision = decide(request, mapping_exists=False, job=_facts(job))
    return await _apply(conn, item, decision)


async def _read(conn: Connection, tenant_id: uuid.UUID, item: Row,
                settings: TenantSettings) -> GridRequest | Hold:
    """The request, with the preset the line item names (by SKU or property), if any."""
    name = preset_name(item["sku"], item["properties"])
    if name is None:
        return read_request(item["properties"], settings)
    preset = (await gridflock_presets.find_preset(conn, tenant_id, name)
              if re.match(PRESET_NAME, name) else None)  # a customer's typing, not a query
    if preset is None:
        return unknown_preset(name, await gridflock_presets.preset_names(conn, tenant_id))
    return read_request(item["properties"], settings, preset)


def _facts(job: gridflock.GridflockJob | None) -> JobFacts | None:
    return None if job is None else JobFacts(job.status, job.failed_step, job.error)


async def _apply(conn: Connection, item: Row, decision: Decision) -> str | None:
    if isinstance(decision, MapThrough):
        return decision.sku
    if isinstance(decision, Wait):
        await _park(conn, item, LineItemStatus.GENERATING, decision.reason)
    elif isinstance(decision, Hold):
        await _park(conn, item, LineItemStatus.NEEDS_MAPPING, decision.reason)
    else:
        raise AssertionError(f"intake cannot apply {decision!r}")
    return None


async def _park(conn: Connection, item: Row, status: LineItemStatus, reason: str) -> None:
    current = LineItemStatus(item["status"])
    if current == status and item.get("reason") == reason:
        return
    if current == LineItemStatus.GENERATING and status == LineItemStatus.NEEDS_MAPPING:
        # The line-item table has no GENERATING -> NEEDS_MAPPING edge: a held item restarts.
        await orders.set_line_item_status(conn, item, LineItemStatus.PENDING)
        item["status"] = LineItemStatus.PENDING
    await orders.set_line_item_status(conn, item, status, reason=reason)
    item["status"], item["reason"] = status.value, reason
