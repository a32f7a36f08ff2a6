"""Order and line-item status functions against PostgreSQL: the machine is checked and names both
states, a writer that lost a race changes nothing, and every change leaves exactly one event."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.domain.orders.states import LineItemStatus, OrderStatus
from forma3d.domain.statemachine import IllegalTransition
from forma3d.store import orders as store

pytestmark = pytest.mark.db
_ids = itertools.count(int(uuid.uuid4().int % 10**9) * 1000)


async def new_order(pool: Pool, tenant_id: uuid.UUID) -> uuid.UUID:
    order = ShopifyOrder.model_validate({"id": next(_ids), "name": "#1", "line_items": [
        {"id": next(_ids), "sku": "BENCHY", "quantity": 1}]})
    async with pool.acquire() as conn, conn.transaction():
        order_id, created = await store.insert_order(conn, tenant_id, order)
    assert created
    return order_id


async def events(pool: Pool, tenant_id: uuid.UUID, *types: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT type, data FROM event_log WHERE tenant_id = $1"
                            " AND type = ANY($2) ORDER BY id", tenant_id, list(types))
    return [{"type": r["type"], **r["data"]} for r in rows]


async def test_an_order_change_is_conditional_stamped_and_recorded(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        order = await store.get_order(conn, order_id, lock=True)
        assert order is not None
        assert await store.set_order_status(conn, order, OrderStatus.PROCESSING, reason=None)
        assert await store.set_order_status(conn, order, OrderStatus.READY_FOR_FULFILLMENT,
                                            parts_total=2, parts_completed=2)
        assert not await store.set_order_status(conn, order, order.status, reason="a note")
    row = await db_pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
    assert (row["status"], row["reason"], row["parts_completed"]) == (
        "READY_FOR_FULFILLMENT", "a note", 2)
    assert row["queued_at"] is not None and row["ready_at"] is not None
    changes = await events(db_pool, tenant_id, "order.status-changed",
                           "order.ready-for-fulfillment")
    assert [(e["type"], e.get("previous_status"), e.get("new_status")) for e in changes] == [
        ("order.status-changed", "PENDING", "PROCESSING"),
        ("order.status-changed", "PROCESSING", "READY_FOR_FULFILLMENT"),
        ("order.ready-for-fulfillment", None, None)]
    assert changes[2]["total_parts"] == changes[2]["completed_parts"] == 2


async def test_an_illegal_order_move_raises_naming_both_states(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        order = await store.get_order(conn, order_id)
        assert order is not None
        with pytest.raises(IllegalTransition, match="PENDING -> FULFILLED"):
            await store.set_order_status(conn, order, OrderStatus.FULFILLED)
    assert await db_pool.fetchval("SELECT status FROM orders WHERE id = $1", order_id) == "PENDING"
    assert await events(db_pool, tenant_id, "order.status-changed", "order.fulfilled") == []


async def test_an_order_writer_that_lost_a_race_changes_nothing(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    stale = await store.get_order(db_pool, order_id)
    assert stale is not None
    async with db_pool.acquire() as conn, conn.transaction():
        fresh = await store.get_order(conn, order_id, lock=True)
        assert fresh is not None
        await store.set_order_status(conn, fresh, OrderStatus.PROCESSING)
    async with db_pool.acquire() as conn, conn.transaction():
        # The stale copy still says PENDING: PENDING -> CANCELLED is legal, but not any more.
        assert not await store.set_order_status(conn, stale, OrderStatus.CANCELLED,
                                                reason="late")
    row = await db_pool.fetchrow("SELECT status, reason, cancelled_at FROM orders WHERE id = $1",
                                 order_id)
    assert tuple(row) == ("PROCESSING", None, None)
    assert [e["new_status"] for e in await events(db_pool, tenant_id, "order.status-changed")] \
        == ["PROCESSING"]
    assert await events(db_pool, tenant_id, "order.cancelled") == []


async def test_a_cancellation_records_the_change_and_the_milestone(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        order = await store.get_order(conn, order_id, lock=True)
        assert order is not None
        await store.set_order_status(conn, order, OrderStatus.CANCELLED, reason="customer",
                                     detail={"reason": "customer"})
    found = await events(db_pool, tenant_id, "order.status-changed", "order.cancelled")
    assert [e["type"] for e in found] == ["order.status-changed", "order.cancelled"]
    assert found[1]["reason"] == "customer" and found[0]["reason"] == "customer"


async def test_line_item_changes_check_their_machine_and_race(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        [item] = await store.line_items(conn, tenant_id, order_id, lock=True)
        stale = dict(item)
        assert await store.set_line_item_status(conn, item, LineItemStatus.PRINTING,
                                                parts_total=3)
        with pytest.raises(IllegalTransition, match="PRINTING -> PENDING"):
            await store.set_line_item_status(conn, item, LineItemStatus.PENDING)
        assert not await store.set_line_item_status(conn, stale, LineItemStatus.NEEDS_MAPPING,
                                                    reason="lost the race")
        assert not await store.set_line_item_status(conn, item, LineItemStatus.PRINTING,
                                                    parts_completed=1)
    row = await db_pool.fetchrow("SELECT status, reason, parts_total, parts_completed"
                                 " FROM line_items WHERE order_id = $1", order_id)
    assert tuple(row) == ("PRINTING", None, 3, 1)
    found = await events(db_pool, tenant_id, "line-item.status-changed")
    assert [(e["previous_status"], e["new_status"], e["line_item_id"]) for e in found] == [
        ("PENDING", "PRINTING", str(item["id"]))]
