"""GridFlock intake in order expansion, against PostgreSQL (no Ray): canonical SKUs, one job per
tenant and size with its run message in the same transaction, existing mappings used at once,
and every hold with its reason."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.handlers.order import expand
from forma3d.store import orders as store

pytestmark = pytest.mark.db
_ids = itertools.count(int(uuid.uuid4().int % 10**9) * 1000)
SKU = "GRID-300x200-MAG-PUZZLE-A1"
PROPS = {"Width (mm)": "300", "Depth (mm)": "200", "Magnets": "yes"}


async def enable(pool: Pool, tenant_id: uuid.UUID, **settings: Any) -> None:
    await pool.execute("UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2"
                       " WHERE id = $1", tenant_id, {"gridflock_enabled": True, **settings})


async def order_with(pool: Pool, tenant_id: uuid.UUID, properties: dict[str, str],
                     sku: str = "GRID-CUSTOM") -> dict[str, Any]:
    """Insert an order with one line item, expand it, and return the line item afterwards."""
    order = ShopifyOrder.model_validate({"id": next(_ids), "name": "#1", "line_items": [
        {"id": next(_ids), "sku": sku, "quantity": 1, "properties": [
            {"name": k, "value": v} for k, v in properties.items()]}]})
    async with pool.acquire() as conn, conn.transaction():
        order_id, _ = await store.insert_order(conn, tenant_id, order)
        await expand(conn, tenant_id, order_id)
    row = await pool.fetchrow("SELECT * FROM line_items WHERE order_id = $1", order_id)
    assert row is not None
    return dict(row)


async def run_messages(pool: Pool, tenant_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch("SELECT target_key FROM outbox WHERE tenant_id = $1"
                            " AND message_type = 'gridflock.run'", tenant_id)
    return [r["target_key"] for r in rows]


async def test_a_new_size_waits_for_one_job_however_many_orders_ask(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await enable(db_pool, tenant_id)
    items = [await order_with(db_pool, tenant_id, PROPS) for _ in range(3)]
    assert {(i["status"], i["mapping_sku"]) for i in items} == {("GENERATING", SKU)}
    jobs = await db_pool.fetch("SELECT sku, status, plan FROM gridflock_jobs WHERE tenant_id = $1",
                               tenant_id)
    assert [(j["sku"], j["status"]) for j in jobs] == [(SKU, "PENDING")]
    assert jobs[0]["plan"]["total_plates"] == 2 and jobs[0]["plan"]["magnets"] is True
    assert await run_messages(db_pool, tenant_id) == [f"{tenant_id}:{SKU}"]


async def test_an_existing_mapping_for_the_canonical_sku_is_used_at_once(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await enable(db_pool, tenant_id)
    file_id, mapping_id = uuid.uuid4(), uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
        " VALUES ($1, $2, 'p.gcode', 'h', 1, 'x')", file_id, tenant_id)
    await db_pool.execute("INSERT INTO product_mappings (id, tenant_id, sku, name)"
                          " VALUES ($1, $2, $3, $3)", mapping_id, tenant_id, SKU)
    await db_pool.execute("INSERT INTO mapping_parts (id, tenant_id, mapping_id, name, file_id,"
                          " quantity) VALUES ($1, $2, $3, 'plate 1', $4, 2)",
                          uuid.uuid4(), tenant_id, mapping_id, file_id)
    item = await order_with(db_pool, tenant_id, {**PROPS, "Width (mm)": "300 mm"})
    assert item["status"] == "PRINTING" and item["mapping_id"] == mapping_id
    assert item["parts_total"] == 2 and item["mapping_sku"] == SKU
    assert await run_messages(db_pool, tenant_id) == []


@pytest.mark.parametrize(("settings", "properties", "words"), [
    ({"gridflock_enabled": False}, PROPS, "off for this tenant"),
    ({}, {**PROPS, "Width (mm)": "1500"}, "width: 1500 mm is outside the allowed range 100 to"),
    ({"gridflock_min_mm": 250}, PROPS, "depth: 200 mm is outside the allowed range 250 to"),
    ({}, {"Depth (mm)": "200"}, "width: missing"),
])
async def test_held_with_the_reason(db_pool: Pool, tenant_id: uuid.UUID, settings: dict[str, Any],
                                    properties: dict[str, str], words: str) -> None:
    await enable(db_pool, tenant_id, **settings)
    item = await order_with(db_pool, tenant_id, properties)
    assert item["status"] == "NEEDS_MAPPING" and words in item["reason"]
    assert await db_pool.fetchval("SELECT count(*) FROM gridflock_jobs WHERE tenant_id = $1",
                                  tenant_id) == 0


async def test_a_failed_job_holds_new_orders_with_its_step_and_error(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await enable(db_pool, tenant_id)
    await order_with(db_pool, tenant_id, PROPS)
    await db_pool.execute("UPDATE gridflock_jobs SET status = 'FAILED', failed_step = 'SLICING',"
                          " error = 'prusa-slicer crashed' WHERE tenant_id = $1", tenant_id)
    item = await order_with(db_pool, tenant_id, PROPS)
    assert item["status"] == "NEEDS_MAPPING"
    assert item["reason"] == f"GridFlock pipeline for {SKU} failed at SLICING: prusa-slicer crashed"
