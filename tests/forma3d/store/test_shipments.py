"""Shipment writes against PostgreSQL: created once per order, the parcel recorded with its
event, and every status change (FAILED and cancellations included) checked and recorded."""

from __future__ import annotations

import uuid

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.shipping.states import ShipmentStatus
from forma3d.domain.statemachine import IllegalTransition
from forma3d.store import shipments
from tests.forma3d.store.test_orders import events, new_order

pytestmark = pytest.mark.db
S = ShipmentStatus


async def test_a_parcel_is_recorded_with_its_status_and_events(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        shipment = await shipments.ensure_shipment(conn, tenant_id, order_id)
        again = await shipments.ensure_shipment(conn, tenant_id, order_id)
        assert again.id == shipment.id and shipment.status == S.PENDING
        assert await shipments.record_parcel(conn, shipment, shipments.Parcel(
            41, "TRK41", "https://t/41", "postnl", "0.200", b"%PDF", 1000), S.LABEL_CREATED)
        await shipments.set_fulfilment(conn, shipment, 77)
    row = await shipments.get_shipment(db_pool, tenant_id, order_id)
    assert row is not None
    assert (row.status, row.parcel_id, row.tracking_number, row.shopify_fulfillment_id) == (
        S.LABEL_CREATED, 41, "TRK41", 77)
    found = await events(db_pool, tenant_id, "shipment.status-changed", "shipment.created")
    assert [(e["type"], e.get("new_status")) for e in found] == [
        ("shipment.status-changed", "LABEL_CREATED"), ("shipment.created", None)]
    assert found[0]["tracking_number"] == "TRK41" and found[1]["sendcloud_parcel_id"] == 41


@pytest.mark.parametrize("path", [
    [S.FAILED, S.PENDING, S.LABEL_CREATED, S.CANCEL_REQUESTED, S.CANCELLED],
    [S.IN_TRANSIT, S.EXCEPTION, S.DELIVERED],
])
async def test_every_shipment_change_is_recorded(db_pool: Pool, tenant_id: uuid.UUID,
                                                 path: list[ShipmentStatus]) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        shipment = await shipments.ensure_shipment(conn, tenant_id, order_id)
        for status in path:
            assert await shipments.set_shipment_status(conn, shipment, status)
    found = await events(db_pool, tenant_id, "shipment.status-changed")
    assert [(e["previous_status"], e["new_status"]) for e in found] == list(
        zip([S.PENDING.value, *path[:-1]], [s.value for s in path], strict=True))


async def test_an_illegal_or_raced_shipment_change_writes_nothing(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        shipment = await shipments.ensure_shipment(conn, tenant_id, order_id)
        stale = await shipments.get_shipment(conn, tenant_id, order_id)
        assert stale is not None
        await shipments.set_shipment_status(conn, shipment, S.DELIVERED)
        with pytest.raises(IllegalTransition, match="DELIVERED -> IN_TRANSIT"):
            await shipments.set_shipment_status(conn, shipment, S.IN_TRANSIT)
        assert not await shipments.set_shipment_status(conn, stale, S.CANCELLED, error="late")
    row = await db_pool.fetchrow("SELECT status, error FROM shipments WHERE order_id = $1",
                                 order_id)
    assert tuple(row) == ("DELIVERED", None)
    assert len(await events(db_pool, tenant_id, "shipment.status-changed")) == 1
