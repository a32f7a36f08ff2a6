"""Shipments: the parcel of an order and its carrier status (written by the order entity).

`set_shipment_status` is the only writer of `shipments.status`: the shipment machine is checked,
the update is conditional on the status the caller read, and `shipment.status-changed` is
recorded for every change (FAILED, CANCEL_REQUESTED and CANCELLED included).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.shipping.states import SHIPMENT_MACHINE, ShipmentStatus
from forma3d.store.events import record
from forma3d.store.orders import update_status


@dataclass
class ShipmentRow:
    id: uuid.UUID
    tenant_id: uuid.UUID
    order_id: uuid.UUID
    status: ShipmentStatus
    external_reference: str
    parcel_id: int | None
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    shopify_fulfillment_id: int | None
    status_at: datetime | None
    api_version: str = "v2"
    carrier_shipment_id: str | None = None
    error: str | None = None
    attempts: int = 0
    fulfilment_error: str | None = None
    carrier_status_id: int | None = None
    carrier_status_code: str | None = None
    shopify_tracking_number: str | None = None
    shopify_shipment_status: str | None = None
    create_failures: int = 0
    shipping_method: str | None = None
    service_point_id: str | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> ShipmentRow:
        return cls(record["id"], record["tenant_id"], record["order_id"],
                   ShipmentStatus(record["status"]), record["external_reference"],
                   record["parcel_id"], record["carrier"], record["tracking_number"],
                   record["tracking_url"], record["shopify_fulfillment_id"], record["status_at"],
                   record["api_version"], record["carrier_shipment_id"], record["error"],
                   record["attempts"], record["fulfilment_error"],
                   record.get("carrier_status_id"), record.get("carrier_status_code"),
                   record.get("shopify_tracking_number"), record.get("shopify_shipment_status"),
                   record.get("create_failures", 0), record.get("shipping_method"),
                   record.get("service_point_id"))


@dataclass(frozen=True)
class Parcel:
    """What Sendcloud answered for a new parcel (v2) or shipment (v3), and its label."""

    parcel_id: int
    tracking_number: str | None
    tracking_url: str | None
    carrier: str | None
    weight_kg: str
    label: bytes
    status_id: int | None
    api_version: str = "v2"
    shipment_id: str | None = None
    status_code: str | None = None
    shipping_method: str | None = None
    service_point_id: str | None = None


async def get_shipment(db: Pool | Connection, tenant_id: uuid.UUID, order_id: uuid.UUID, *,
                       lock: bool = False) -> ShipmentRow | None:
    row = await db.fetchrow(
        "SELECT * FROM shipments WHERE tenant_id = $1 AND order_id = $2"
        f"{' FOR UPDATE' if lock else ''}", tenant_id, order_id)
    return ShipmentRow.of(record_to_dict(row)) if row else None


async def ensure_shipment(conn: Connection, tenant_id: uuid.UUID,
                          order_id: uuid.UUID) -> ShipmentRow:
    """The order's shipment, created PENDING on the first ship (its external reference is the
    idempotency handle at Sendcloud)."""
    await conn.execute(
        """INSERT INTO shipments (id, tenant_id, order_id, external_reference)
           VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, order_id) DO NOTHING""",
        uuid.uuid4(), tenant_id, order_id, f"forma3d-{order_id}")
    shipment = await get_shipment(conn, tenant_id, order_id)
    assert shipment is not None
    return shipment


async def set_shipment_status(conn: Connection, shipment: ShipmentRow, status: ShipmentStatus,
                              *, detail: Mapping[str, Any] | None = None,
                              **fields: Any) -> bool:
    """Move the shipment from `shipment.status` to `status` with `fields` in the same update and
    record `shipment.status-changed` (`detail` adds the carrier's status id and message). The
    same status writes only `fields`; an illegal move raises IllegalTransition naming both
    states; False if the row had moved meanwhile."""
    current = shipment.status
    if status != current:
        SHIPMENT_MACHINE.check(current, status)
    row = await update_status(conn, "shipments", shipment.id, current, status, fields,
                              ", updated_at = now()")
    if row is None:
        return False
    updated = ShipmentRow.of(row)
    shipment.__dict__.update(updated.__dict__)
    if status == current:
        return False
    await record(conn, EventType.SHIPMENT_STATUS_CHANGED, shipment.tenant_id, {
        "shipment_id": str(shipment.id), "order_id": str(shipment.order_id),
        "previous_status": current.value, "new_status": status.value,
        "tracking_number": shipment.tracking_number, "tracking_url": shipment.tracking_url,
        **(detail or {})}, subject=("order", shipment.order_id))
    await _order_milestones(conn, shipment, status)
    return True


_SHIPPED = frozenset({ShipmentStatus.IN_TRANSIT, ShipmentStatus.DELIVERED})


async def _order_milestones(conn: Connection, shipment: ShipmentRow,
                            status: ShipmentStatus) -> None:
    """`order.shipped` once, at the parcel's first move with the carrier (a skipped transit
    counts), and `order.delivered` at its delivery: the milestones shops automate on."""
    if status not in _SHIPPED:
        return
    subject = ("order", shipment.order_id)
    data = {"order_id": str(shipment.order_id), "shipment_id": str(shipment.id),
            "carrier": shipment.carrier, "tracking_number": shipment.tracking_number,
            "tracking_url": shipment.tracking_url}
    shipped = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM event_log WHERE tenant_id = $1 AND subject_type = 'order'"
        " AND subject_id = $2 AND type = $3)", shipment.tenant_id, str(shipment.order_id),
        EventType.ORDER_SHIPPED.value)
    if not shipped:
        await record(conn, EventType.ORDER_SHIPPED, shipment.tenant_id, data, subject=subject)
    if status == ShipmentStatus.DELIVERED:
        await record(conn, EventType.ORDER_DELIVERED, shipment.tenant_id, data, subject=subject)


async def record_parcel(conn: Connection, shipment: ShipmentRow, parcel: Parcel,
                        status: ShipmentStatus) -> bool:
    """Store the new parcel and label with the status Sendcloud gave it, and record
    `shipment.created`; False (nothing written) if the shipment had moved meanwhile."""
    await set_shipment_status(
        conn, shipment, status, detail={"sendcloud_status_id": parcel.status_id,
                                        "sendcloud_status_code": parcel.status_code},
        parcel_id=parcel.parcel_id, tracking_number=parcel.tracking_number,
        tracking_url=parcel.tracking_url, carrier=parcel.carrier, weight_kg=parcel.weight_kg,
        label=parcel.label, carrier_status_id=parcel.status_id,
        carrier_status_code=parcel.status_code, carrier_shipment_id=parcel.shipment_id,
        api_version=parcel.api_version, error=None, shipping_method=parcel.shipping_method,
        service_point_id=parcel.service_point_id, create_failures=0)
    if shipment.parcel_id != parcel.parcel_id:
        return False  # the row had moved: nothing was written
    await record(conn, EventType.SHIPMENT_CREATED, shipment.tenant_id, {
        "shipment_id": str(shipment.id), "order_id": str(shipment.order_id),
        "sendcloud_parcel_id": parcel.parcel_id, "sendcloud_shipment_id": parcel.shipment_id,
        "sendcloud_api": parcel.api_version, "tracking_number": parcel.tracking_number,
        "tracking_url": parcel.tracking_url, "carrier": parcel.carrier,
        "weight_kg": parcel.weight_kg, "shipping_method": parcel.shipping_method,
        "service_point_id": parcel.service_point_id}, subject=("order", shipment.order_id))
    return True


async def set_fulfilment(conn: Connection, shipment: ShipmentRow, fulfillment_id: int | None,
                         ) -> None:
    """The Shopify fulfilment made with this shipment's tracking number (clears a refusal)."""
    await conn.execute("UPDATE shipments SET shopify_fulfillment_id = $2,"
                       " fulfilment_error = NULL, shopify_tracking_number = tracking_number,"
                       " updated_at = now() WHERE id = $1", shipment.id, fulfillment_id)
    shipment.shopify_fulfillment_id = fulfillment_id
    shipment.fulfilment_error = None
    shipment.shopify_tracking_number = shipment.tracking_number


async def fail_shipment(conn: Connection, shipment: ShipmentRow, reason: str, action: str,
                        api_version: str) -> bool:
    """The shipment could not be created (refused, announcement failed) through `api_version`:
    FAILED with the reason and the operator's action in the row and the event."""
    return await set_shipment_status(conn, shipment, ShipmentStatus.FAILED,
                                     detail={"reason": reason, "action": action}, error=reason,
                                     api_version=api_version)


async def restart_shipment(conn: Connection, shipment: ShipmentRow, *, by: str) -> bool:
    """An operator retries a FAILED shipment: PENDING again under a new external reference
    (the failed one may exist at Sendcloud, announced-failed, and would be found again)."""
    attempt = shipment.attempts + 1
    return await set_shipment_status(
        conn, shipment, ShipmentStatus.PENDING, detail={"reason": f"retried by {by}"},
        external_reference=f"forma3d-{shipment.order_id}-r{attempt}", attempts=attempt,
        error=None, create_failures=0, parcel_id=None, carrier_shipment_id=None,
        tracking_number=None, tracking_url=None, carrier=None, label=None)


async def fulfilment_refused(conn: Connection, shipment: ShipmentRow, reason: str,
                             http_status: int | None, action: str) -> None:
    """Shopify refused the fulfilment: keep the reason on the shipment and record
    `shipment.fulfilment-failed` with the operator's action."""
    await conn.execute("UPDATE shipments SET fulfilment_error = $2, updated_at = now()"
                       " WHERE id = $1", shipment.id, reason)
    shipment.fulfilment_error = reason
    await record(conn, EventType.SHIPMENT_FULFILMENT_FAILED, shipment.tenant_id, {
        "shipment_id": str(shipment.id), "order_id": str(shipment.order_id), "reason": reason,
        "http_status": http_status, "action": action}, subject=("order", shipment.order_id))


async def apply_carrier_report(conn: Connection, shipment: ShipmentRow, status: ShipmentStatus,
                               *, tracking_number: str | None, tracking_url: str | None,
                               detail: Mapping[str, Any], **fields: Any) -> bool:
    """A Sendcloud report (webhook or reconciliation): the status through `set_shipment_status`,
    the carrier's fields, and its tracking when it changed (`shipment.tracking-updated`); a
    first delivery also records `shipment.delivered`. True if the tracking changed."""
    previous_status, previous_number = shipment.status, shipment.tracking_number
    changed = bool(tracking_number) and (tracking_number != shipment.tracking_number or (
        tracking_url is not None and tracking_url != shipment.tracking_url))
    if changed:
        fields = {**fields, "tracking_number": tracking_number,
                  "tracking_url": tracking_url or shipment.tracking_url}
    await set_shipment_status(conn, shipment, status, detail=detail, **fields)
    subject = ("order", shipment.order_id)
    if changed and shipment.tracking_number == tracking_number:
        await record(conn, EventType.SHIPMENT_TRACKING_UPDATED, shipment.tenant_id, {
            "shipment_id": str(shipment.id), "order_id": str(shipment.order_id),
            "previous_tracking_number": previous_number, "tracking_number": tracking_number,
            "tracking_url": shipment.tracking_url}, subject=subject)
    if shipment.status == ShipmentStatus.DELIVERED != previous_status:
        await record(conn, EventType.SHIPMENT_DELIVERED, shipment.tenant_id, {
            "shipment_id": str(shipment.id), "order_id": str(shipment.order_id),
            "tracking_number": shipment.tracking_number,
            "sendcloud_status_id": detail.get("sendcloud_status_id"),
            "sendcloud_status_code": detail.get("sendcloud_status_code")}, subject=subject)
    return changed and shipment.tracking_number == tracking_number


async def shopify_updated(conn: Connection, shipment: ShipmentRow, *,
                          tracking_number: str | None = None,
                          shipment_status: str | None = None) -> None:
    """Shopify's fulfilment now has this tracking number and/or shipment status: remember it
    (so it is not sent again) and record `shipment.shopify-updated`."""
    await conn.execute(
        "UPDATE shipments SET shopify_tracking_number = coalesce($2, shopify_tracking_number),"
        " shopify_shipment_status = coalesce($3, shopify_shipment_status), updated_at = now()"
        " WHERE id = $1", shipment.id, tracking_number, shipment_status)
    shipment.shopify_tracking_number = tracking_number or shipment.shopify_tracking_number
    shipment.shopify_shipment_status = shipment_status or shipment.shopify_shipment_status
    await record(conn, EventType.SHIPMENT_SHOPIFY_UPDATED, shipment.tenant_id, {
        "shipment_id": str(shipment.id), "order_id": str(shipment.order_id),
        "shopify_fulfillment_id": str(shipment.shopify_fulfillment_id),
        "tracking_number": tracking_number, "shipment_status": shipment_status},
        subject=("order", shipment.order_id))


async def count_create_failure(conn: Connection, shipment: ShipmentRow, reason: str) -> int:
    """One more transient failure creating the parcel (kept with its reason on the row while
    the order still waits); returns how many in a row."""
    failures: int = await conn.fetchval(
        "UPDATE shipments SET create_failures = create_failures + 1, error = $2,"
        " updated_at = now() WHERE id = $1 RETURNING create_failures", shipment.id, reason)
    shipment.create_failures, shipment.error = failures, reason
    return failures
