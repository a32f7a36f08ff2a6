"""Orders in PostgreSQL: ingest, mapping resolution, job expansion and status recomputation.

Every status change goes through the domain's transition tables and leaves an event; callers
pass the connection of their transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.gridflock.sku import is_custom_sku
from forma3d.domain.orders.expansion import expand_line_item
from forma3d.domain.orders.progress import LineItemState, derive_order_status, next_order_status
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.domain.orders.states import LINE_ITEM_MACHINE, LineItemStatus, OrderStatus
from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping
from forma3d.store.events import record
from forma3d.store.tenants import tenant_settings

Row = dict[str, Any]


async def insert_order(conn: Connection, tenant_id: uuid.UUID,
                       order: ShopifyOrder) -> tuple[uuid.UUID, bool]:
    """Create the order and its line items once per Shopify order id; (id, created)."""
    address = order.shipping_address.model_dump(mode="json") if order.shipping_address else None
    order_id = await conn.fetchval(
        """INSERT INTO orders (id, tenant_id, shopify_order_id, name, email, currency, total_price,
                               shipping_address, shopify_created_at, shopify_updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (tenant_id, shopify_order_id) DO NOTHING RETURNING id""",
        uuid.uuid4(), tenant_id, order.id, order.name, order.email, order.currency,
        order.total_price, address, order.created_at, order.updated_at,
    )
    if order_id is None:
        existing: uuid.UUID = await conn.fetchval(
            "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
            tenant_id, order.id)
        return existing, False
    await conn.executemany(
        """INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, variant_id,
                                   title, quantity, properties)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [(uuid.uuid4(), tenant_id, order_id, li.id, li.sku,
          str(li.variant_id) if li.variant_id is not None else None, li.title, li.quantity,
          li.properties) for li in order.line_items],
    )
    items = await conn.fetch(
        "SELECT id, sku, quantity, shopify_line_item_id FROM line_items"
        " WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id)
    await record(conn, EventType.ORDER_CREATED, tenant_id, {
        "order_id": str(order_id), "shopify_order_id": str(order.id), "order_number": order.name,
        "line_items": [{"line_item_id": str(i["id"]), "sku": i["sku"] or "(none)",
                        "quantity": i["quantity"],
                        "shopify_line_item_id": str(i["shopify_line_item_id"])} for i in items]},
        subject=("order", order_id))
    return order_id, True


async def update_order(conn: Connection, tenant_id: uuid.UUID, order: ShopifyOrder) -> bool:
    """orders/updated: take the newer contact and address; older payloads change nothing."""
    address = order.shipping_address.model_dump(mode="json") if order.shipping_address else None
    status = await conn.execute(
        """UPDATE orders SET email = $3, shipping_address = $4, shopify_updated_at = $5,
                             updated_at = now()
           WHERE tenant_id = $1 AND shopify_order_id = $2
             AND (shopify_updated_at IS NULL OR shopify_updated_at < $5)""",
        tenant_id, order.id, order.email, address, order.updated_at)
    return bool(status.endswith("1"))


async def load_mapping(conn: Connection, tenant_id: uuid.UUID, sku: str,
                       variant_id: str | None) -> ProductMapping | None:
    """The mapping for a SKU, preferring the variant-specific one."""
    row = await conn.fetchrow(
        """SELECT id, sku FROM product_mappings
           WHERE tenant_id = $1 AND sku = $2 AND variant_id IN ('', coalesce($3, ''))
           ORDER BY variant_id DESC LIMIT 1""", tenant_id, sku, variant_id)
    if row is None:
        return None
    parts = await conn.fetch(
        "SELECT id, file_id, quantity, grams, name FROM mapping_parts"
        " WHERE tenant_id = $1 AND mapping_id = $2 ORDER BY position, id", tenant_id, row["id"])
    if not parts:
        return None
    return ProductMapping(row["sku"], tuple(
        AssemblyPart(str(p["id"]), str(p["file_id"]), p["quantity"], p["grams"], p["name"])
        for p in parts), str(row["id"]))


async def set_line_item(conn: Connection, item: Row, status: LineItemStatus,
                        **fields: Any) -> None:
    current = LineItemStatus(item["status"])
    if current != status:
        LINE_ITEM_MACHINE.check(current, status)
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, start=3))
    await conn.execute(
        f"UPDATE line_items SET status = $2{', ' + sets if sets else ''} WHERE id = $1",
        item["id"], status.value, *fields.values())


async def expand_order(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID,
                       intake: Intake) -> int:
    """Resolve mappings and create print jobs for every line item that can start; returns the
    number of jobs created (idempotent: jobs are unique per order, line item, part and copy)."""
    created = 0
    attempts = (await tenant_settings(conn, tenant_id)).max_print_attempts
    items = await conn.fetch(
        "SELECT * FROM line_items WHERE tenant_id = $1 AND order_id = $2"
        " AND status IN ('PENDING', 'NEEDS_MAPPING', 'GENERATING')"
        " ORDER BY shopify_line_item_id FOR UPDATE",
        tenant_id, order_id)
    for item in map(record_to_dict, items):
        sku = item["sku"] or ""
        # --- GridFlock (issue 5): GRID-CUSTOM maps through its canonical SKU, or waits/holds.
        if is_custom_sku(sku):
            canonical = await intake(conn, tenant_id, item)
            if canonical is None:
                continue
            sku = canonical
        # --- end GridFlock
        mapping = await load_mapping(conn, tenant_id, sku, item["variant_id"])
        if mapping is None:
            if item["status"] != LineItemStatus.NEEDS_MAPPING:
                await set_line_item(conn, item, LineItemStatus.NEEDS_MAPPING,
                                    reason=f"no product mapping for SKU {item['sku']!r}")
            continue
        specs = expand_line_item(str(order_id), str(item["id"]), item["quantity"], mapping)
        tags = await _required_tags(conn, tenant_id, uuid.UUID(mapping.mapping_id))
        await conn.executemany(
            """INSERT INTO print_jobs (id, tenant_id, job_key, order_id, line_item_id, part_id,
                                       copy_number, file_id, required_tags, max_attempts)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (tenant_id, job_key) DO NOTHING""",
            [(uuid.uuid4(), tenant_id, s.key, order_id, item["id"], uuid.UUID(s.part_id),
              s.copy_number, uuid.UUID(s.file_id), tags.get(s.part_id, []), attempts)
             for s in specs])
        created += len(specs)
        if item["status"] == LineItemStatus.NEEDS_MAPPING:
            await set_line_item(conn, item, LineItemStatus.PENDING, reason=None)
            item["status"] = LineItemStatus.PENDING
        await set_line_item(conn, item, LineItemStatus.PRINTING,
                            mapping_id=uuid.UUID(mapping.mapping_id),
                            parts_total=len(specs), reason=None)
    return created


async def _required_tags(conn: Connection, tenant_id: uuid.UUID,
                         mapping_id: uuid.UUID) -> dict[str, list[str]]:
    rows = await conn.fetch("SELECT id, required_tags FROM mapping_parts"
                            " WHERE tenant_id = $1 AND mapping_id = $2", tenant_id, mapping_id)
    return {str(r["id"]): list(r["required_tags"]) for r in rows}


async def recompute(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID) -> OrderStatus:
    """Bring line items and the order in line with their jobs; returns the order's status."""
    order = await conn.fetchrow("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
    assert order is not None
    current = OrderStatus(order["status"])
    items = [record_to_dict(r) for r in await conn.fetch(
        "SELECT * FROM line_items WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id)]
    counts = {r["line_item_id"]: r for r in await conn.fetch(
        """SELECT line_item_id, count(*) AS total,
                  count(*) FILTER (WHERE status = 'COMPLETED') AS done,
                  count(*) FILTER (WHERE status = 'FAILED') AS failed,
                  count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
           FROM print_jobs WHERE tenant_id = $1 AND order_id = $2 GROUP BY line_item_id""",
        tenant_id, order_id)}
    for item in items:
        c = counts.get(item["id"])
        status = LineItemStatus(item["status"])
        if c is None or status not in (LineItemStatus.PRINTING, LineItemStatus.PRINTED,
                                       LineItemStatus.FAILED):
            continue
        wanted = (LineItemStatus.FAILED if c["failed"] or c["cancelled"] else
                  LineItemStatus.PRINTED if c["done"] == c["total"] else LineItemStatus.PRINTING)
        if wanted != status or c["done"] != item["parts_completed"]:
            reason = "print job failed after its last attempt" if wanted == LineItemStatus.FAILED \
                else None
            await set_line_item(conn, item, wanted, parts_completed=c["done"],
                                parts_total=c["total"], reason=reason)
            item["status"] = wanted.value
    derived = derive_order_status([LineItemState(str(i["id"]), i["sku"] or "", LineItemStatus(
        i["status"])) for i in items])
    target = next_order_status(current, derived.status)
    totals = (sum(c["total"] for c in counts.values()), sum(c["done"] for c in counts.values()))
    stamp = {OrderStatus.READY_FOR_FULFILLMENT: ", ready_at = now()",
             OrderStatus.PROCESSING: ", queued_at = coalesce(queued_at, now())"}.get(target, "")
    await conn.execute(
        f"""UPDATE orders SET status = $2, reason = $3, parts_total = $4, parts_completed = $5,
                              updated_at = now(){stamp if target != current else ''}
            WHERE id = $1""",
        order_id, target.value, derived.reason, totals[0], totals[1])
    if target == OrderStatus.READY_FOR_FULFILLMENT and current != target:
        await record(conn, EventType.ORDER_READY_FOR_FULFILLMENT, tenant_id, {
            "order_id": str(order_id), "shopify_order_id": str(order["shopify_order_id"]),
            "total_parts": totals[0], "completed_parts": totals[1]}, subject=("order", order_id))
    return target


# --- used by GridFlock intake


Intake = Callable[[Connection, uuid.UUID, Row], Awaitable[str | None]]
"""GridFlock intake (forma3d.handlers.gridflock_intake.intake), passed in by the caller: the
canonical SKU a GRID-CUSTOM line item maps through, or None when it waits or is held."""


async def set_line_item_mapping_sku(conn: Connection, item: Row, sku: str) -> None:
    """The SKU a line item maps through (GridFlock's canonical SKU for GRID-CUSTOM)."""
    if item.get("mapping_sku") != sku:
        await conn.execute("UPDATE line_items SET mapping_sku = $2 WHERE id = $1", item["id"], sku)
        item["mapping_sku"] = sku
