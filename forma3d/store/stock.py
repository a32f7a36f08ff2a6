"""Stock per product mapping: its settings and the immutable ledger its levels derive from.

Every movement is one `record` call: it takes the stock item's row lock (so movements of one
product serialise, and two orders racing for the last unit are decided by PostgreSQL), applies
the ledger rules of `forma3d.domain.inventory.ledger` to the last balance, appends the entry with
the balance it leads to, and records `stock.level-changed`, all in the caller's transaction.
Nothing here updates or deletes an entry (a trigger refuses updates).

Writers: the tenant entity (adjustments, scrap, batches, settings) and the order entity for its
own line items' reservations (reserve when it expands, consume when it ships, release and return
when it is cancelled), because a reservation must commit with the expansion that relies on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.inventory.ledger import Balance, apply, direction_of
from forma3d.domain.inventory.replenishment import StockTarget
from forma3d.domain.inventory.states import Direction, LedgerType, ReferenceType
from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping
from forma3d.messaging.envelope import delivery_id
from forma3d.store.events import record as record_event
from forma3d.store.tenants import change_settings

SETTINGS = ("minimum", "maximum", "priority", "batch_size")


@dataclass(frozen=True, slots=True)
class Reference:
    """What caused a movement: one of order/line item/batch/user, and their ids."""

    type: ReferenceType
    id: str | None = None
    order_id: uuid.UUID | None = None
    line_item_id: uuid.UUID | None = None
    stock_batch_id: uuid.UUID | None = None
    created_by: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A recorded ledger entry with the balance after it."""

    id: int
    mapping_id: uuid.UUID
    kind: LedgerType
    direction: Direction
    quantity: int
    balance: Balance


async def ensure_item(conn: Connection, tenant_id: uuid.UUID, mapping_id: uuid.UUID) -> bool:
    """The stock item of a mapping (default settings) exists afterwards; False if the mapping
    is not this tenant's."""
    ok = await conn.fetchval(
        """INSERT INTO stock_items (tenant_id, mapping_id)
           SELECT $1, id FROM product_mappings WHERE tenant_id = $1 AND id = $2
           ON CONFLICT (tenant_id, mapping_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id
           RETURNING true""", tenant_id, mapping_id)
    return bool(ok)


async def lock_items(conn: Connection, tenant_id: uuid.UUID,
                     mapping_ids: Iterable[uuid.UUID]) -> None:
    """Lock several stock items in one fixed order (by mapping id), so two orders taking the
    same products in different line-item orders wait for each other instead of deadlocking."""
    await conn.execute(
        "SELECT 1 FROM stock_items WHERE tenant_id = $1 AND mapping_id = ANY($2)"
        " ORDER BY mapping_id FOR UPDATE", tenant_id, sorted(set(mapping_ids)))


async def lock_balance(conn: Connection, tenant_id: uuid.UUID,
                       mapping_id: uuid.UUID) -> Balance | None:
    """The current balance under the stock item's row lock; None without a stock item."""
    locked = await conn.fetchval(
        "SELECT true FROM stock_items WHERE tenant_id = $1 AND mapping_id = $2 FOR UPDATE",
        tenant_id, mapping_id)
    if not locked:
        return None
    row = await conn.fetchrow(
        "SELECT on_hand_after, reserved_after FROM stock_ledger"
        " WHERE tenant_id = $1 AND mapping_id = $2 ORDER BY id DESC LIMIT 1",
        tenant_id, mapping_id)
    return Balance(row["on_hand_after"], row["reserved_after"]) if row else Balance()


async def record(conn: Connection, tenant_id: uuid.UUID, mapping_id: uuid.UUID,
                 kind: LedgerType, quantity: int, reference: Reference, *,
                 direction: Direction | None = None, reason: str | None = None) -> Entry:
    """Append one entry (creating the stock item if needed); LedgerError / InsufficientStock
    (ValueErrors) when the rules refuse it, LookupError for another tenant's mapping."""
    if not await ensure_item(conn, tenant_id, mapping_id):
        raise LookupError(f"product mapping {mapping_id} not found")
    balance = await lock_balance(conn, tenant_id, mapping_id)
    assert balance is not None
    way = direction or direction_of(kind, quantity)
    after = apply(balance, kind, way, quantity, reason)
    entry_id: int = await conn.fetchval(
        """INSERT INTO stock_ledger (tenant_id, mapping_id, entry_type, direction, quantity,
               on_hand_after, reserved_after, reference_type, reference_id, order_id,
               line_item_id, stock_batch_id, created_by, reason, message_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
           RETURNING id""",
        tenant_id, mapping_id, kind.value, way.value, quantity, after.on_hand, after.reserved,
        reference.type.value, reference.id, reference.order_id, reference.line_item_id,
        reference.stock_batch_id, reference.created_by, reason, delivery_id.get())
    await record_event(conn, EventType.STOCK_LEVEL_CHANGED, tenant_id, {
        "product_mapping_id": str(mapping_id), "ledger_entry_id": str(entry_id),
        "entry_type": kind.value, "direction": way.value, "quantity": quantity,
        "on_hand": after.on_hand, "reserved": after.reserved, "available": after.available,
        "reference_type": reference.type.value, "reference_id": reference.id,
        "reason": reason}, subject=("stock", mapping_id))
    return Entry(entry_id, mapping_id, kind, way, quantity, after)


# --- reservations of an order's line items --------------------------------------------------


def _line_item_ref(item: Mapping[str, Any]) -> Reference:
    return Reference(ReferenceType.LINE_ITEM, str(item["id"]), order_id=item["order_id"],
                     line_item_id=item["id"])


async def reserve(conn: Connection, item: Mapping[str, Any], mapping_id: uuid.UUID,
                  wanted: int) -> int:
    """Reserve up to `wanted` available units for a line item; returns how many it got (0 when
    the product is not stocked). Under the stock row lock: of two orders racing for the last
    unit, the second sees it reserved."""
    balance = await lock_balance(conn, item["tenant_id"], mapping_id)
    take = min(wanted, balance.available) if balance is not None else 0
    if take > 0:
        await record(conn, item["tenant_id"], mapping_id, LedgerType.RESERVED, take,
                     _line_item_ref(item), reason="order line item")
    return take


async def outstanding(conn: Connection, tenant_id: uuid.UUID,
                      line_item_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Units still reserved for a line item, per product (reserved - released - consumed)."""
    rows = await conn.fetch(
        """SELECT mapping_id, sum(CASE entry_type WHEN 'RESERVED' THEN quantity
                                                  ELSE -quantity END) AS units
           FROM stock_ledger WHERE tenant_id = $1 AND line_item_id = $2
             AND entry_type IN ('RESERVED', 'RELEASED', 'CONSUMED')
           GROUP BY mapping_id""", tenant_id, line_item_id)
    return {r["mapping_id"]: int(r["units"]) for r in rows if r["units"] > 0}


async def ever_reserved(conn: Connection, tenant_id: uuid.UUID, line_item_id: uuid.UUID) -> int:
    """Units a line item was ever promised from stock (its split, decided once)."""
    units = await conn.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM stock_ledger WHERE tenant_id = $1"
        " AND line_item_id = $2 AND entry_type = 'RESERVED'", tenant_id, line_item_id)
    return int(units)


async def release(conn: Connection, item: Mapping[str, Any], reason: str) -> int:
    """Give a line item's outstanding reservations back to the shelf; returns units."""
    released = 0
    for mapping_id, units in (await outstanding(conn, item["tenant_id"], item["id"])).items():
        await record(conn, item["tenant_id"], mapping_id, LedgerType.RELEASED, units,
                     _line_item_ref(item), reason=reason)
        released += units
    return released


async def consume(conn: Connection, item: Mapping[str, Any]) -> int:
    """The line item shipped: its reserved units leave the shelf; returns units."""
    consumed = 0
    for mapping_id, units in (await outstanding(conn, item["tenant_id"], item["id"])).items():
        await record(conn, item["tenant_id"], mapping_id, LedgerType.CONSUMED, units,
                     _line_item_ref(item), reason="order shipped")
        consumed += units
    return consumed


async def return_printed(conn: Connection, item: Mapping[str, Any], mapping_id: uuid.UUID,
                         units: int, *, scrap: bool) -> int:
    """Whole units printed for a cancelled line item go on the shelf (RETURNED), and straight
    out again when the tenant scraps them (SCRAPPED): a ledger entry either way. Counts what
    was returned before, so a late completion adds only the new units; returns units added."""
    before = await conn.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM stock_ledger WHERE tenant_id = $1"
        " AND line_item_id = $2 AND entry_type = 'RETURNED'", item["tenant_id"], item["id"])
    new = units - int(before)
    if new <= 0:
        return 0
    ref = _line_item_ref(item)
    await record(conn, item["tenant_id"], mapping_id, LedgerType.RETURNED, new, ref,
                 reason="printed for a cancelled order")
    if scrap:
        await record(conn, item["tenant_id"], mapping_id, LedgerType.SCRAPPED, new, ref,
                     reason="printed for a cancelled order; tenant scraps such parts")
    return new


# --- settings and reads -------------------------------------------------------------------


async def update_item(conn: Connection, tenant_id: uuid.UUID, mapping_id: uuid.UUID,
                      changes: Mapping[str, Any], *, by: str | None = None) -> dict[str, Any]:
    """Change a product's stock settings (min, max, priority, batch size), with an event
    carrying before and after; LookupError for a mapping that is not the tenant's; the table's
    CHECKs refuse a maximum below the minimum (asyncpg.CheckViolationError)."""
    if not await ensure_item(conn, tenant_id, mapping_id):
        raise LookupError(f"product mapping {mapping_id} not found")
    row = record_to_dict(await conn.fetchrow(
        "SELECT * FROM stock_items WHERE tenant_id = $1 AND mapping_id = $2 FOR UPDATE",
        tenant_id, mapping_id))
    wanted = {k: v for k, v in changes.items() if k in SETTINGS}
    before = {k: row[k] for k in SETTINGS}
    after = before | wanted
    if after == before:
        return row
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(wanted, start=3))
    updated = record_to_dict(await conn.fetchrow(
        f"UPDATE stock_items SET {sets}, updated_at = now()"
        " WHERE tenant_id = $1 AND mapping_id = $2 RETURNING *",
        tenant_id, mapping_id, *wanted.values()))
    await record_event(conn, EventType.STOCK_SETTINGS_CHANGED, tenant_id, {
        "product_mapping_id": str(mapping_id), "before": before, "after": after},
        subject=("stock", mapping_id))
    return updated


async def set_tenant_settings(conn: Connection, tenant_id: uuid.UUID,
                              changes: Mapping[str, Any]) -> None:
    """Merge the stock-management keys into tenants.settings (the tenant settings' one writer,
    `store.tenants.change_settings`), with an event (before, after)."""
    before = await change_settings(conn, tenant_id, changes)
    if not before:
        return
    await record_event(conn, EventType.STOCK_SETTINGS_CHANGED, tenant_id,
                       {"before": before, "after": {k: changes[k] for k in before}},
                       subject=("tenant", tenant_id))


async def level(db: Pool | Connection, tenant_id: uuid.UUID,
                mapping_id: uuid.UUID) -> dict[str, Any] | None:
    row = await db.fetchrow("SELECT * FROM stock_levels WHERE tenant_id = $1 AND mapping_id = $2",
                            tenant_id, mapping_id)
    return record_to_dict(row) if row else None


async def targets(db: Pool | Connection, tenant_id: uuid.UUID) -> list[StockTarget]:
    """Every stocked product with a minimum, as the replenishment planner sees it."""
    rows = await db.fetch("SELECT * FROM stock_levels WHERE tenant_id = $1 AND minimum > 0",
                          tenant_id)
    return [StockTarget(str(r["mapping_id"]), r["available"], r["in_production"], r["minimum"],
                        r["maximum"], r["priority"], r["batch_size"]) for r in rows]


async def mapping(db: Pool | Connection, tenant_id: uuid.UUID,
                  mapping_id: uuid.UUID) -> ProductMapping | None:
    """A product mapping by id with its parts (None if not the tenant's or without parts)."""
    row = await db.fetchrow("SELECT id, sku FROM product_mappings WHERE tenant_id = $1"
                            " AND id = $2", tenant_id, mapping_id)
    if row is None:
        return None
    parts = await db.fetch(
        "SELECT id, file_id, quantity, grams, name FROM mapping_parts"
        " WHERE tenant_id = $1 AND mapping_id = $2 ORDER BY position, id", tenant_id, mapping_id)
    if not parts:
        return None
    return ProductMapping(row["sku"], tuple(
        AssemblyPart(str(p["id"]), str(p["file_id"]), p["quantity"], p["grams"], p["name"])
        for p in parts), str(row["id"]))


async def part_tags(db: Pool | Connection, tenant_id: uuid.UUID,
                    mapping_id: uuid.UUID) -> dict[str, list[str]]:
    """The printer tags each part of a mapping requires (copied onto its print jobs)."""
    rows = await db.fetch("SELECT id, required_tags FROM mapping_parts"
                          " WHERE tenant_id = $1 AND mapping_id = $2", tenant_id, mapping_id)
    return {str(r["id"]): list(r["required_tags"]) for r in rows}
