"""Orders and their line items in PostgreSQL: ingest, statuses and progress.

`set_order_status` and `set_line_item_status` are the only writers of `orders.status` and
`line_items.status`: each checks its lifecycle's machine, updates conditionally (`... WHERE
status = <expected>`, so a writer that lost a race changes nothing) and records the event, all in
the caller's transaction. Decisions (which status the jobs imply) are the domain's; this module
only reads and writes rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import asyncpg

from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.orders.live import units_to_make
from forma3d.domain.orders.progress import (
    FAILED_LINE_ITEM_REASON,
    JobCounts,
    LineItemState,
    derive_order_status,
    line_item_status_from_counts,
    next_order_status,
)
from forma3d.domain.orders.shopify_order import ShopifyLineItem, ShopifyOrder
from forma3d.domain.orders.states import (
    LINE_ITEM_MACHINE,
    ORDER_MACHINE,
    LineItemStatus,
    OrderStatus,
)
from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping
from forma3d.domain.shipping.delivery import CheckoutDelivery
from forma3d.store.events import record

Row = dict[str, Any]


@dataclass(frozen=True)
class NewLineItem:
    """A line item as it is first stored: `quantity` units to make of `ordered_quantity` bought
    (0 to make: stored CANCELLED)."""

    shopify_line_item_id: int
    sku: str | None
    variant_id: str | None
    title: str
    quantity: int
    ordered_quantity: int
    requires_shipping: bool = True
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, li: ShopifyLineItem) -> NewLineItem:
        return cls(li.id, li.sku, str(li.variant_id) if li.variant_id is not None else None,
                   li.title, units_to_make(li.quantity, li.current_quantity, 0), li.quantity,
                   li.requires_shipping, li.properties)


@dataclass(frozen=True)
class NewOrder:
    """An order as it is first stored: from Shopify (`shopify_order_id`) or made by API
    (`source` manual, with the caller's `reference`)."""

    name: str
    line_items: Sequence[NewLineItem]
    shopify_order_id: int | None = None
    email: str | None = None
    currency: str | None = None
    total_price: Decimal | None = None
    shipping_address: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    financial_status: str | None = None
    source: str = "shopify"
    reference: str | None = None

    @classmethod
    def of(cls, order: ShopifyOrder) -> NewOrder:
        address = (order.shipping_address.model_dump(mode="json") if order.shipping_address
                   else None)
        return cls(order.name or f"#{order.id}", [NewLineItem.of(li) for li in order.line_items],
                   order.id,
                   order.email, order.currency, order.total_price, address, order.created_at,
                   order.updated_at, order.financial_status)


async def insert_order(conn: Connection, tenant_id: uuid.UUID,
                       order: ShopifyOrder | NewOrder) -> tuple[uuid.UUID, bool]:
    """Create the order and its line items once per Shopify order id (or manual reference);
    (id, created)."""
    new = order if isinstance(order, NewOrder) else NewOrder.of(order)
    conflict = ("(tenant_id, shopify_order_id)" if new.shopify_order_id is not None
                else "(tenant_id, reference) WHERE reference IS NOT NULL")
    order_id = await conn.fetchval(
        f"""INSERT INTO orders (id, tenant_id, shopify_order_id, name, email, currency,
                               total_price, shipping_address, shopify_created_at,
                               shopify_updated_at, financial_status, source, reference, delivery)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT {conflict} DO NOTHING RETURNING id""",
        uuid.uuid4(), tenant_id, new.shopify_order_id, new.name, new.email, new.currency,
        new.total_price, dict(new.shipping_address) if new.shipping_address else None,
        new.created_at, new.updated_at, new.financial_status, new.source, new.reference,
        None if isinstance(order, NewOrder) else _delivery(order),
    )
    if order_id is None:
        existing: uuid.UUID = await conn.fetchval(
            "SELECT id FROM orders WHERE tenant_id = $1 AND (shopify_order_id = $2"
            " OR reference = $3)", tenant_id, new.shopify_order_id, new.reference)
        return existing, False
    await insert_line_items(conn, tenant_id, order_id, new.line_items)
    items = await conn.fetch(
        "SELECT id, sku, quantity, shopify_line_item_id FROM line_items"
        " WHERE tenant_id = $1 AND order_id = $2", tenant_id, order_id)
    await record(conn, EventType.ORDER_CREATED, tenant_id, {
        "order_id": str(order_id), "order_number": new.name,
        "shopify_order_id": None if new.shopify_order_id is None else str(new.shopify_order_id),
        "line_items": [{"line_item_id": str(i["id"]), "sku": i["sku"] or "(none)",
                        "quantity": i["quantity"],
                        "shopify_line_item_id": str(i["shopify_line_item_id"])} for i in items]},
        subject=("order", order_id))
    gone = {li.shopify_line_item_id for li in new.line_items if li.quantity == 0}
    for item in await line_items(conn, tenant_id, order_id, LineItemStatus.PENDING):
        if item["shopify_line_item_id"] in gone:  # bought, then edited or refunded away
            await set_line_item_status(conn, item, LineItemStatus.CANCELLED,
                                       reason="removed from the order before it was processed")
    return order_id, True


async def insert_line_items(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID,
                            lines: Sequence[NewLineItem]) -> None:
    """Add line items to an order (at creation, or added by an edit); a line item the order
    has already is left as it is. A line with nothing to make is stored with its ordered units
    for the caller to cancel."""
    await conn.executemany(
        """INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, variant_id,
                                   title, quantity, ordered_quantity, requires_shipping,
                                   properties)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (tenant_id, order_id, shopify_line_item_id) DO NOTHING""",
        [(uuid.uuid4(), tenant_id, order_id, li.shopify_line_item_id, li.sku, li.variant_id,
          li.title, li.quantity or li.ordered_quantity, li.ordered_quantity,
          li.requires_shipping, dict(li.properties)) for li in lines],
    )


async def update_order(conn: Connection, tenant_id: uuid.UUID, order: ShopifyOrder) -> bool:
    """orders/updated, orders/paid: take the newer contact, address and payment status; older
    payloads change nothing (False)."""
    address = order.shipping_address.model_dump(mode="json") if order.shipping_address else None
    status = await conn.execute(
        """UPDATE orders SET email = $3, shipping_address = $4, shopify_updated_at = $5,
                             delivery = $6, financial_status = coalesce($7, financial_status),
                             updated_at = now()
           WHERE tenant_id = $1 AND shopify_order_id = $2
             AND (shopify_updated_at IS NULL OR shopify_updated_at < $5)""",
        tenant_id, order.id, order.email, address, order.updated_at, _delivery(order),
        order.financial_status)
    return bool(status.endswith("1"))


def _delivery(order: ShopifyOrder) -> dict[str, Any] | None:
    """The checkout's delivery choice as stored (a pickup point picked after payment arrives
    with orders/updated, so updates take it too)."""
    delivery = order.delivery
    return None if delivery.empty else delivery.model_dump(mode="json", exclude_none=True)


async def set_hold(conn: Connection, order: OrderRow, reason: str | None, *, by: str) -> bool:
    """Hold the order with `reason` (`order.held`), or release it with None (`order.released`);
    its status follows through the caller (set_order_status / recompute). False if nothing
    changed."""
    if reason == order.hold_reason or (reason is None and order.hold_reason is None):
        return False
    previous = order.hold_reason
    await conn.execute("UPDATE orders SET hold_reason = $2, updated_at = now() WHERE id = $1",
                       order.id, reason)
    order.hold_reason = reason
    data: dict[str, Any] = {"order_id": str(order.id), "by": by}
    if reason is not None:
        await record(conn, EventType.ORDER_HELD, order.tenant_id, data | {"reason": reason},
                     subject=("order", order.id))
    else:
        await record(conn, EventType.ORDER_RELEASED, order.tenant_id,
                     data | {"hold_reason": previous}, subject=("order", order.id))
    return True


async def set_line_item_quantity(conn: Connection, item: Row, quantity: int,
                                 ordered: int | None = None) -> None:
    """The units a line item makes after an edit or refund (its jobs follow by the caller), and
    the units bought when an edit raised them."""
    ordered = max(ordered or 0, item.get("ordered_quantity") or 0) or None
    await conn.execute("UPDATE line_items SET quantity = $2,"
                       " ordered_quantity = coalesce($3, ordered_quantity) WHERE id = $1",
                       item["id"], quantity, ordered)
    item["quantity"], item["ordered_quantity"] = quantity, ordered


async def add_refund(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID,
                     refund_id: int) -> bool:
    """Remember a Shopify refund as applied; False if it was already."""
    done = await conn.fetchval(
        "INSERT INTO order_refunds (tenant_id, refund_id, order_id) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true", tenant_id, refund_id, order_id)
    return bool(done)


async def add_refunded_units(conn: Connection, item: Row, units: int) -> None:
    await conn.execute("UPDATE line_items SET refunded_quantity = refunded_quantity + $2"
                       " WHERE id = $1", item["id"], units)
    item["refunded_quantity"] = item["refunded_quantity"] + units


async def load_mapping(conn: Connection, tenant_id: uuid.UUID, sku: str,
                       variant_id: str | None) -> ProductMapping | None:
    """The mapping for a SKU, preferring the variant-specific one."""
    row = await conn.fetchrow(
        """SELECT id, sku FROM product_mappings
           WHERE tenant_id = $1 AND sku = $2 AND variant_id IN ('', coalesce($3, ''))
           ORDER BY variant_id DESC LIMIT 1""", tenant_id, sku, variant_id)
    return await _with_parts(conn, tenant_id, row)


async def mapping_by_id(conn: Connection, tenant_id: uuid.UUID,
                        mapping_id: uuid.UUID) -> ProductMapping | None:
    """The mapping a line item was expanded with, whatever its SKU is called today (more units
    of the line item are made of the same parts as the units before them)."""
    row = await conn.fetchrow(
        "SELECT id, sku FROM product_mappings WHERE tenant_id = $1 AND id = $2",
        tenant_id, mapping_id)
    return await _with_parts(conn, tenant_id, row)


async def _with_parts(conn: Connection, tenant_id: uuid.UUID,
                      row: asyncpg.Record | None) -> ProductMapping | None:
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


@dataclass
class OrderRow:
    """The order columns the order entity decides with."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    shopify_order_id: int | None
    name: str
    email: str | None
    status: OrderStatus
    reason: str | None
    currency: str | None
    total_price: Decimal | None
    shipping_address: dict[str, Any] | None
    parts_total: int
    parts_completed: int
    delivery: CheckoutDelivery | None = None
    financial_status: str | None = None
    hold_reason: str | None = None
    source: str = "shopify"

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> OrderRow:
        return cls(record["id"], record["tenant_id"], record["shopify_order_id"], record["name"],
                   record["email"], OrderStatus(record["status"]), record["reason"],
                   record["currency"], record["total_price"], record["shipping_address"],
                   record["parts_total"], record["parts_completed"],
                   delivery=CheckoutDelivery.model_validate(record["delivery"])
                   if record.get("delivery") else None,
                   financial_status=record["financial_status"],
                   hold_reason=record["hold_reason"], source=record["source"])


async def get_order(db: Pool | Connection, order_id: uuid.UUID, *,
                    lock: bool = False) -> OrderRow | None:
    """The order, row-locked until the transaction ends when `lock` (pass a connection)."""
    row = await db.fetchrow(f"SELECT * FROM orders WHERE id = $1{' FOR UPDATE' if lock else ''}",
                            order_id)
    return OrderRow.of(record_to_dict(row)) if row else None


async def update_status(conn: Connection, table: str, row_id: uuid.UUID, current: StrEnum,
                        target: StrEnum, fields: Mapping[str, Any],
                        stamps: str = "") -> Row | None:
    """`UPDATE <table> SET status = target, <fields> ... WHERE id = row_id AND status = current`:
    the row afterwards, or None when it was no longer `current` (a writer that lost a race
    changes nothing). The callers below are the only code that writes a status column."""
    sets = "".join(f", {k} = ${i}" for i, k in enumerate(fields, start=4))
    row = await conn.fetchrow(
        f"UPDATE {table} SET status = $3{sets}{stamps} WHERE id = $1 AND status = $2"
        " RETURNING *", row_id, current.value, target.value, *fields.values())
    return record_to_dict(row) if row else None


_ORDER_STAMPS = {
    OrderStatus.PROCESSING: ", queued_at = coalesce(queued_at, now())",
    OrderStatus.READY_FOR_FULFILLMENT: ", ready_at = now()",
    OrderStatus.FULFILLED: ", fulfilled_at = now()",
    OrderStatus.CANCELLED: ", cancelled_at = now()",
}
_ORDER_MILESTONES = {
    OrderStatus.READY_FOR_FULFILLMENT: EventType.ORDER_READY_FOR_FULFILLMENT,
    OrderStatus.FULFILLED: EventType.ORDER_FULFILLED,
    OrderStatus.CANCELLED: EventType.ORDER_CANCELLED,
}


async def set_order_status(conn: Connection, order: OrderRow, status: OrderStatus, *,
                           detail: Mapping[str, Any] | None = None, **fields: Any) -> bool:
    """Move the order from `order.status` to `status`, with `fields` (reason, part counts) in the
    same update, and record `order.status-changed` plus the milestone event of READY, FULFILLED
    or CANCELLED (`detail` adds to its data). The same status writes only `fields`; an illegal
    move raises IllegalTransition naming both states; False if the row had moved meanwhile."""
    current = order.status
    if status != current:
        ORDER_MACHINE.check(current, status)
    stamps = ", updated_at = now()" + (_ORDER_STAMPS.get(status, "") if status != current else "")
    row = await update_status(conn, "orders", order.id, current, status, fields, stamps)
    if row is None:
        return False
    order.status, order.reason = status, row["reason"]
    order.parts_total, order.parts_completed = row["parts_total"], row["parts_completed"]
    if status == current:
        return False
    subject = ("order", order.id)
    await record(conn, EventType.ORDER_STATUS_CHANGED, order.tenant_id, {
        "order_id": str(order.id), "previous_status": current.value,
        "new_status": status.value, "reason": row["reason"]}, subject=subject)
    if status == OrderStatus.PROCESSING:
        await record(conn, EventType.ORDER_PRINTING, order.tenant_id, {
            "order_id": str(order.id), "shopify_order_id": str(order.shopify_order_id),
            "previous_status": current.value}, subject=subject)
    milestone = _ORDER_MILESTONES.get(status)
    if milestone is not None:
        data: dict[str, Any] = {"order_id": str(order.id), "shopify_order_id": None
                                if order.shopify_order_id is None
                                else str(order.shopify_order_id)}
        if status == OrderStatus.READY_FOR_FULFILLMENT:
            data |= {"total_parts": row["parts_total"], "completed_parts": row["parts_completed"]}
        await record(conn, milestone, order.tenant_id, data | dict(detail or {}),
                     subject=subject)
    return True


async def line_items(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID,
                     *statuses: LineItemStatus, lock: bool = False) -> list[Row]:
    """The order's line items (in Shopify's order; only `statuses` if given)."""
    wanted = [s.value for s in statuses] or [s.value for s in LineItemStatus]
    rows = await conn.fetch(
        "SELECT * FROM line_items WHERE tenant_id = $1 AND order_id = $2 AND status = ANY($3)"
        f" ORDER BY shopify_line_item_id{' FOR UPDATE' if lock else ''}",
        tenant_id, order_id, wanted)
    return [record_to_dict(r) for r in rows]


async def set_line_item_status(conn: Connection, item: Row, status: LineItemStatus,
                               **fields: Any) -> bool:
    """Move a line item (a row as read, updated in place) to `status`, with `fields` in the same
    update, and record `line-item.status-changed`. The same status writes only `fields`; an
    illegal move raises IllegalTransition; False if the row had moved meanwhile."""
    current = LineItemStatus(item["status"])
    if status != current:
        LINE_ITEM_MACHINE.check(current, status)
    row = await update_status(conn, "line_items", item["id"], current, status, fields)
    if row is None:
        return False
    item.update(row)
    if status == current:
        return False
    await record(conn, EventType.LINE_ITEM_STATUS_CHANGED, row["tenant_id"], {
        "line_item_id": str(row["id"]), "order_id": str(row["order_id"]),
        "previous_status": current.value, "new_status": status.value,
        "reason": row["reason"]}, subject=("order", row["order_id"]))
    return True




async def job_counts(conn: Connection, tenant_id: uuid.UUID,
                     order_id: uuid.UUID) -> dict[uuid.UUID, JobCounts]:
    """The order's print jobs counted by outcome, per line item."""
    rows = await conn.fetch(
        """SELECT line_item_id, count(*) AS total,
                  count(*) FILTER (WHERE status = 'COMPLETED') AS done,
                  count(*) FILTER (WHERE status = 'FAILED') AS failed,
                  count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled
           FROM print_jobs WHERE tenant_id = $1 AND order_id = $2 AND NOT withdrawn
           GROUP BY line_item_id""",
        tenant_id, order_id)
    return {r["line_item_id"]: JobCounts(r["total"], r["done"], r["failed"], r["cancelled"])
            for r in rows}


async def recompute(conn: Connection, tenant_id: uuid.UUID, order_id: uuid.UUID) -> OrderStatus:
    """Bring line items and the order in line with their jobs (the domain decides what the
    counts imply); returns the order's status. Holds the order's row lock."""
    order = await get_order(conn, order_id, lock=True)
    if order is None:
        raise LookupError(f"order {order_id} does not exist")
    items = await line_items(conn, tenant_id, order_id)
    counts = await job_counts(conn, tenant_id, order_id)
    for item in items:
        c = counts.get(item["id"])
        wanted = line_item_status_from_counts(LineItemStatus(item["status"]), c)
        if c is None or wanted is None:
            continue
        if wanted != item["status"] or c.done != item["parts_completed"]:
            await set_line_item_status(
                conn, item, wanted, parts_completed=c.done, parts_total=c.total,
                reason=FAILED_LINE_ITEM_REASON if wanted == LineItemStatus.FAILED else None)
    derived = derive_order_status([LineItemState(str(i["id"]), i["sku"] or "", LineItemStatus(
        i["status"])) for i in items], operator_hold=order.hold_reason)
    target = next_order_status(order.status, derived.status)
    await set_order_status(conn, order, target, reason=derived.reason,
                           parts_total=sum(c.total for c in counts.values()),
                           parts_completed=sum(c.done for c in counts.values()))
    return target


async def set_line_item_mapping_sku(conn: Connection, item: Row, sku: str) -> None:
    """The SKU a line item maps through (GridFlock's canonical SKU for GRID-CUSTOM)."""
    if item.get("mapping_sku") != sku:
        await conn.execute("UPDATE line_items SET mapping_sku = $2 WHERE id = $1", item["id"], sku)
        item["mapping_sku"] = sku


async def skip_line_item(conn: Connection, item: Row, reason: str) -> bool:
    """Record a line item as not a print (SKIPPED with the reason, and `line-item.skipped`)."""
    if not await set_line_item_status(conn, item, LineItemStatus.SKIPPED, reason=reason):
        return False
    await record(conn, EventType.LINE_ITEM_SKIPPED, item["tenant_id"], {
        "line_item_id": str(item["id"]), "order_id": str(item["order_id"]), "sku": item["sku"],
        "reason": reason}, subject=("order", item["order_id"]))
    return True


async def record_paid(conn: Connection, order: OrderRow, financial_status: str,
                      released: bool) -> None:
    await record(conn, EventType.ORDER_PAID, order.tenant_id, {
        "order_id": str(order.id), "financial_status": financial_status, "released": released},
        subject=("order", order.id))


async def record_edit(conn: Connection, order: OrderRow, changes: list[dict[str, Any]],
                      held: bool) -> None:
    await record(conn, EventType.ORDER_EDITED, order.tenant_id, {
        "order_id": str(order.id), "changes": changes, "held": held}, subject=("order", order.id))


async def record_refund(conn: Connection, order: OrderRow, refund_id: int,
                        lines: list[dict[str, Any]], full: bool) -> None:
    await record(conn, EventType.ORDER_REFUNDED, order.tenant_id, {
        "order_id": str(order.id), "refund_id": str(refund_id), "lines": lines, "full": full},
        subject=("order", order.id))
