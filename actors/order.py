"""OrderActor: one per order; drives it from print jobs on the farm to a fulfilled shipment.

Commands change rows in one transaction; steps talk to SimplyPrint, Sendcloud and Shopify and are
idempotent by construction (queue notes, Sendcloud's external_reference, looking before
creating), so a redelivered message repeats nothing that already happened.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from actors.entity import Entity, command, step
from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.orders.shopify_order import ShopifyAddress, split_street
from forma3d.domain.orders.states import ORDER_MACHINE, OrderStatus
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.domain.shipping.parcel import parcel_weight_kg
from forma3d.domain.shipping.states import SHIPMENT_MACHINE, ShipmentStatus, status_from_sendcloud
from forma3d.handlers import farm, gridflock_intake
from forma3d.integrations.errors import PermanentError
from forma3d.integrations.sendcloud import ParcelRequest
from forma3d.integrations.settings import (
    IntegrationMissing,
    SendcloudSettings,
    ShopifySettings,
    SimplyPrintSettings,
)
from forma3d.integrations.shopify import FulfillmentOrderLines, TrackingInfo
from forma3d.messaging.envelope import Envelope
from forma3d.store import orders as store
from forma3d.store import print_jobs
from forma3d.store.events import record
from forma3d.store.integrations import load_integration
from forma3d.store.outbox import enqueue
from forma3d.store.tenants import tenant_settings

log = logging.getLogger(__name__)
JOB_EVENTS = {"PRINTING": PrintJobStatus.PRINTING, "COMPLETED": PrintJobStatus.COMPLETED,
              "FAILED": PrintJobStatus.FAILED, "CANCELLED": PrintJobStatus.CANCELLED}


class OrderActor(Entity):
    kind = "order"

    async def activate(self) -> None:
        self.order_id = uuid.UUID(self.key)
        tenant_id = await self.ctx.pool.fetchval("SELECT tenant_id FROM orders WHERE id = $1",
                                                 self.order_id)
        if tenant_id is None:
            raise LookupError(f"order {self.key} does not exist")
        self.tenant_id: uuid.UUID = tenant_id

    def _to_self(self, message_type: str, payload: dict[str, Any] | None = None) -> Envelope:
        return Envelope("order", self.key, message_type, str(self.tenant_id), payload or {},
                        durable=True)

    async def _status(self, conn: Connection | None = None) -> OrderStatus:
        """Pass the handler's connection when it holds a transaction: a second pooled
        connection per busy entity would let a burst of handlers exhaust the pool."""
        db = conn if conn is not None else self.ctx.pool
        return OrderStatus(await db.fetchval("SELECT status FROM orders WHERE id = $1",
                                             self.order_id))

    async def _integration(self, model: type[Any]) -> Any:
        settings = await load_integration(self.ctx.pool, self.tenant_id, model)
        if settings is None:
            raise IntegrationMissing(f"{model.service} is not configured for this tenant")
        return settings

    # --- printing -----------------------------------------------------------------------

    @step("order.start")
    async def start(self, envelope: Envelope) -> int:
        """Resolve mappings, create the jobs, queue them; then put them on the farm."""
        if ORDER_MACHINE.is_terminal(await self._status()):
            return 0
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await store.expand_order(conn, self.tenant_id, self.order_id, gridflock_intake.intake)
            for job in await self._jobs(conn, "PENDING"):
                await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                           queued_at=datetime.now(UTC))
            await store.recompute(conn, self.tenant_id, self.order_id)
        submitted: int = await self.submit(envelope)
        return submitted

    @step("order.submit")
    async def submit(self, envelope: Envelope) -> int:
        """Put queued jobs that are not on the farm yet into SimplyPrint's queue."""
        async with self.ctx.pool.acquire() as conn:
            jobs = [j for j in await self._jobs(conn, "QUEUED")
                    if j["farm_queue_item_id"] is None]
        if not jobs or ORDER_MACHINE.is_terminal(await self._status()):
            return 0  # nothing to place (a held order needs no farm yet)
        sp: SimplyPrintSettings = await self._integration(SimplyPrintSettings)
        if sp.dispatch_mode != "simplyprint_queue":
            return 0  # smart dispatch: printers pull from our queue
        async with sp.client() as client:
            placed = await farm.queue_jobs(self.ctx.pool, client, jobs)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            for job_id, item_id in placed.items():
                await conn.execute(
                    "UPDATE print_jobs SET farm_queue_item_id = $2, updated_at = now()"
                    " WHERE id = $1 AND status = 'QUEUED' AND farm_queue_item_id IS NULL",
                    job_id, item_id)
        return len(placed)

    @command("job.status")
    async def job_status(self, envelope: Envelope, conn: Connection) -> str:
        """A farm event (webhook or reconciliation) for one of this order's jobs."""
        p = envelope.payload
        job = await self._job(conn, uuid.UUID(p["print_job_id"]))
        if job is None:
            return "unknown job"
        queue_item = p.get("queue_item_id")
        if queue_item is not None and job["farm_queue_item_id"] not in (None, int(queue_item)):
            return "stale: an earlier attempt"
        status = JOB_EVENTS[p["status"]]
        if await self._status(conn) == OrderStatus.CANCELLED and \
                status != PrintJobStatus.COMPLETED:
            return "order cancelled"
        at = datetime.fromisoformat(p["at"]) if p.get("at") else datetime.now(UTC)
        links = {k: v for k, v in (("farm_job_uid", p.get("farm_job_uid")),
                                   ("farm_printer_id", p.get("farm_printer_id"))) if v}
        if status == PrintJobStatus.PRINTING:
            changed = await print_jobs.set_job_status(conn, job, status, started_at=at,
                                                      status_at=at, **links)
        elif status == PrintJobStatus.COMPLETED:
            changed = await print_jobs.set_job_status(conn, job, status, completed_at=at,
                                                 status_at=at, **links)
        else:
            changed = await self._failed(conn, job, status, p.get("error") or p["status"], at)
        if changed:
            await store.recompute(conn, self.tenant_id, self.order_id)
            await self._after_recompute(conn)
        return "applied" if changed else "ignored"

    async def _failed(self, conn: Connection, job: dict[str, Any], status: PrintJobStatus,
                      error: str, at: datetime) -> bool:
        """A failed print goes back to the queue until its attempts are used up."""
        if not await print_jobs.set_job_status(conn, job, status, error=error, status_at=at,
                                          attempts=job["attempts"] + 1):
            return False
        if job["attempts"] + 1 < job["max_attempts"]:
            await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                            farm_queue_item_id=None, farm_job_uid=None,
                                            farm_printer_id=None)
            await enqueue(conn, self._to_self("order.submit"))
        return True

    @command("job.retry")
    async def retry(self, envelope: Envelope, conn: Connection) -> str:
        """Operator requeue of a failed or cancelled job; revives a FAILED order."""
        job = await self._job(conn, uuid.UUID(envelope.payload["print_job_id"]))
        if job is None:
            raise LookupError(f"print job {envelope.payload['print_job_id']} is not in this order")
        if await self._status(conn) == OrderStatus.CANCELLED:
            raise ValueError("the order is cancelled; its jobs cannot be retried")
        # Attempts keep counting (each submission's queue note must be new); the budget grows.
        budget = (await tenant_settings(conn, self.tenant_id)).max_print_attempts
        if not await print_jobs.set_job_status(conn, job, PrintJobStatus.QUEUED,
                                          max_attempts=job["attempts"] + budget,
                                          farm_queue_item_id=None, farm_job_uid=None,
                                          farm_printer_id=None, error=None):
            raise ValueError(f"print job is {job['status']}; only FAILED or CANCELLED retry")
        await conn.execute("UPDATE line_items SET status = 'PRINTING', reason = NULL"
                           " WHERE id = $1 AND status = 'FAILED'", job["line_item_id"])
        await store.recompute(conn, self.tenant_id, self.order_id)
        await enqueue(conn, self._to_self("order.submit"))
        return "queued"

    async def _after_recompute(self, conn: Connection) -> None:
        status = OrderStatus(await conn.fetchval("SELECT status FROM orders WHERE id = $1",
                                                 self.order_id))
        if status == OrderStatus.READY_FOR_FULFILLMENT:
            await enqueue(conn, self._to_self("order.ship"))

    # --- shipping -----------------------------------------------------------------------

    @step("order.ship")
    async def ship(self, envelope: Envelope) -> str:
        """Parcel and label at Sendcloud, then the Shopify fulfilment with tracking."""
        if await self._status() != OrderStatus.READY_FOR_FULFILLMENT:
            return "not ready"
        shipment = await self._shipment()
        if shipment["parcel_id"] is None:
            shipment = await self._create_parcel(shipment)
            if shipment["parcel_id"] is None:
                return "parcel failed"
        if shipment["shopify_fulfillment_id"] is None:
            await self._fulfil(shipment)
        return "fulfilled"

    async def _shipment(self) -> dict[str, Any]:
        async with self.ctx.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO shipments (id, tenant_id, order_id, external_reference)
                   VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, order_id) DO NOTHING""",
                uuid.uuid4(), self.tenant_id, self.order_id, f"forma3d-{self.order_id}")
            return record_to_dict(await conn.fetchrow(
                "SELECT * FROM shipments WHERE tenant_id = $1 AND order_id = $2",
                self.tenant_id, self.order_id))

    async def _create_parcel(self, shipment: dict[str, Any]) -> dict[str, Any]:
        sc: SendcloudSettings = await self._integration(SendcloudSettings)
        settings = await tenant_settings(self.ctx.pool, self.tenant_id)
        order = record_to_dict(await self.ctx.pool.fetchrow(
            "SELECT * FROM orders WHERE id = $1", self.order_id))
        grams = await self.ctx.pool.fetch(
            """SELECT mp.grams FROM print_jobs j JOIN mapping_parts mp ON mp.id = j.part_id
               WHERE j.tenant_id = $1 AND j.order_id = $2""", self.tenant_id, self.order_id)
        weight = parcel_weight_kg([g["grams"] for g in grams], settings.packaging_grams)
        address = ShopifyAddress.model_validate(order["shipping_address"] or {})
        street, number = split_street(address.address1 or "")
        request = ParcelRequest(
            external_reference=shipment["external_reference"], name=address.full_name,
            company_name=address.company, address=street, house_number=number,
            address_2=address.address2 or None, city=address.city or "",
            postal_code=address.zip or "", country=address.country_code or "",
            telephone=address.phone, email=order["email"], order_number=order["name"],
            weight=weight, shipping_method_id=sc.shipping_method_id,
            sender_address=sc.sender_address_id, total_order_value=order["total_price"],
            total_order_value_currency=order["currency"], request_label=True)
        try:
            async with sc.client() as client:
                parcel = await client.create_parcel(request)
                label = await client.get_label_pdf(parcel.id)
        except PermanentError as error:
            await self._shipment_failed(shipment, f"Sendcloud refused the parcel: {error}")
            return shipment
        status = status_from_sendcloud(parcel.status_id or 0) or ShipmentStatus.LABEL_CREATED
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """UPDATE shipments SET parcel_id = $2, tracking_number = $3, tracking_url = $4,
                          carrier = $5, weight_kg = $6, label = $7, status = $8,
                          carrier_status_id = $9, error = NULL, updated_at = now()
                   WHERE id = $1 RETURNING *""",
                shipment["id"], parcel.id, parcel.tracking_number, parcel.tracking_url,
                parcel.carrier_code, weight, label, status.value, parcel.status_id)
            await record(conn, EventType.SHIPMENT_CREATED, self.tenant_id, {
                "shipment_id": str(shipment["id"]), "order_id": str(self.order_id),
                "sendcloud_parcel_id": parcel.id, "tracking_number": parcel.tracking_number,
                "tracking_url": parcel.tracking_url, "carrier": parcel.carrier_code,
                "weight_kg": weight}, subject=("order", self.order_id))
        return record_to_dict(row)

    async def _shipment_failed(self, shipment: dict[str, Any], reason: str) -> None:
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE shipments SET status = 'FAILED', error = $2,"
                               " updated_at = now() WHERE id = $1", shipment["id"], reason)
            await conn.execute("UPDATE orders SET reason = $2, updated_at = now()"
                               " WHERE id = $1", self.order_id, reason)

    async def _fulfil(self, shipment: dict[str, Any]) -> None:
        shop: ShopifySettings = await self._integration(ShopifySettings)
        shopify_id = await self.ctx.pool.fetchval(
            "SELECT shopify_order_id FROM orders WHERE id = $1", self.order_id)
        tracking = TrackingInfo(number=shipment["tracking_number"], url=shipment["tracking_url"],
                                company=shipment["carrier"])
        async with shop.client() as client:
            open_orders = [fo for fo in await client.get_fulfillment_orders(shopify_id)
                           if fo.status in ("open", "in_progress")]
            if open_orders:
                fulfillment = await client.create_fulfillment(
                    shopify_id, [FulfillmentOrderLines(fo.id) for fo in open_orders], tracking)
                fulfillment_id: int | None = fulfillment.id
            else:
                found = await client.find_fulfillment(shopify_id, shipment["tracking_number"])
                fulfillment_id = found.id if found else None
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE shipments SET shopify_fulfillment_id = $2,"
                               " updated_at = now() WHERE id = $1", shipment["id"], fulfillment_id)
            status = await self._status(conn)
            if ORDER_MACHINE.can(status, OrderStatus.FULFILLED):
                await conn.execute("UPDATE orders SET status = 'FULFILLED', fulfilled_at = now(),"
                                   " reason = NULL, updated_at = now() WHERE id = $1",
                                   self.order_id)

    @command("shipment.status")
    async def shipment_status(self, envelope: Envelope, conn: Connection) -> str:
        """A Sendcloud status change; older timestamps than the one applied are ignored."""
        p = envelope.payload
        shipment = await conn.fetchrow(
            "SELECT * FROM shipments WHERE tenant_id = $1 AND order_id = $2 FOR UPDATE",
            self.tenant_id, self.order_id)
        if shipment is None:
            return "no shipment"
        at = datetime.fromisoformat(p["at"])
        if shipment["status_at"] is not None and shipment["status_at"] >= at:
            return "stale"
        current = ShipmentStatus(shipment["status"])
        mapped = status_from_sendcloud(int(p["status_id"]))
        if mapped is None:
            log.warning("unknown Sendcloud status %s for parcel %s kept as is", p["status_id"],
                        shipment["parcel_id"])
        target = mapped if mapped and SHIPMENT_MACHINE.can(current, mapped) else current
        await conn.execute(
            """UPDATE shipments SET status = $2, carrier_status_id = $3, carrier_status = $4,
                      status_at = $5, updated_at = now() WHERE id = $1""",
            shipment["id"], target.value, int(p["status_id"]), p.get("message"), at)
        if target != current:
            await record(conn, EventType.SHIPMENT_STATUS_CHANGED, self.tenant_id, {
                "shipment_id": str(shipment["id"]), "order_id": str(self.order_id),
                "previous_status": current.value, "new_status": target.value,
                "sendcloud_status_id": int(p["status_id"]),
                "sendcloud_status_message": p.get("message"),
                "tracking_number": shipment["tracking_number"]}, subject=("order", self.order_id))
        return target.value

    # --- cancellation -------------------------------------------------------------------

    @step("order.cancel")
    async def cancel(self, envelope: Envelope) -> str:
        """Take queued jobs off the farm, stop or keep prints, cancel the parcel, then record."""
        status = await self._status()
        if status == OrderStatus.CANCELLED:
            return "already cancelled"
        if not ORDER_MACHINE.can(status, OrderStatus.CANCELLED):
            raise ValueError(f"an order that is {status} cannot be cancelled")
        settings = await tenant_settings(self.ctx.pool, self.tenant_id)
        async with self.ctx.pool.acquire() as conn:
            jobs = await self._jobs(conn, "PENDING", "QUEUED", "ASSIGNED", "PRINTING")
        # Queued on SimplyPrint, or started on a printer by smart dispatch (no queue item).
        on_farm = [j for j in jobs if j["farm_queue_item_id"] is not None
                   or j["farm_job_uid"] or j["farm_printer_id"]]
        if on_farm:
            sp: SimplyPrintSettings = await self._integration(SimplyPrintSettings)
            async with sp.client() as client:
                await farm.withdraw_jobs(client, on_farm,
                                         stop_printing=settings.cancel_printing_jobs)
        shipment = await self.ctx.pool.fetchrow(
            "SELECT * FROM shipments WHERE tenant_id = $1 AND order_id = $2",
            self.tenant_id, self.order_id)
        shipment_status = None
        if shipment is not None and shipment["parcel_id"] is not None:
            sc: SendcloudSettings = await self._integration(SendcloudSettings)
            async with sc.client() as client:
                result = await client.cancel_parcel(shipment["parcel_id"])
            shipment_status = (ShipmentStatus.CANCEL_REQUESTED if result.http_status == 202
                               else ShipmentStatus.CANCELLED)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            for job in await self._jobs(conn, "PENDING", "QUEUED", "ASSIGNED", "PRINTING"):
                if job["status"] == "PRINTING" and not settings.cancel_printing_jobs:
                    continue  # left to finish; its part goes to stock or scrap
                await print_jobs.set_job_status(conn, job, PrintJobStatus.CANCELLED,
                                           error="order cancelled")
            await conn.execute(
                "UPDATE line_items SET status = 'CANCELLED', reason = $2"
                " WHERE tenant_id = $1 AND order_id = $3 AND status <> 'CANCELLED'",
                self.tenant_id, envelope.payload.get("reason") or "order cancelled",
                self.order_id)
            if shipment is not None:
                await conn.execute(
                    "UPDATE shipments SET status = $2, updated_at = now() WHERE id = $1",
                    shipment["id"], (shipment_status or ShipmentStatus.CANCELLED).value)
            await conn.execute(
                "UPDATE orders SET status = 'CANCELLED', cancelled_at = now(), reason = $2,"
                " updated_at = now() WHERE id = $1",
                self.order_id, envelope.payload.get("reason") or "cancelled")
            await record(conn, EventType.ORDER_CANCELLED, self.tenant_id, {
                "order_id": str(self.order_id), "reason": envelope.payload.get("reason")},
                subject=("order", self.order_id))
        return "cancelled"

    # --- rows ---------------------------------------------------------------------------

    async def _jobs(self, conn: Connection, *statuses: str) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            "SELECT * FROM print_jobs WHERE tenant_id = $1 AND order_id = $2"
            " AND status = ANY($3) ORDER BY job_key", self.tenant_id, self.order_id, list(statuses))
        return [record_to_dict(r) for r in rows]

    async def _job(self, conn: Connection, job_id: uuid.UUID) -> dict[str, Any] | None:
        row = await conn.fetchrow(
            "SELECT * FROM print_jobs WHERE tenant_id = $1 AND order_id = $2 AND id = $3"
            " FOR UPDATE", self.tenant_id, self.order_id, job_id)
        return record_to_dict(row) if row else None
