"""TenantActor: one per tenant; turns inbound webhooks into order messages, resumes held orders,
reconciles the farm and backfills Shopify, and owns the tenant's stock ledger."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from actors.entity import Entity, command, query, step
from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.orders.shopify_order import ORDER_TOPICS, ShopifyOrder
from forma3d.domain.printing.reconcile import WEBHOOK_STATUS, JobUpdate, reconcile
from forma3d.integrations.settings import ShopifySettings, SimplyPrintSettings
from forma3d.messaging.envelope import Envelope
from forma3d.store import orders as store
from forma3d.store.integrations import load_integration
from forma3d.store.outbox import enqueue
from forma3d.store.tenants import tenant_settings

BACKFILL_LOOKBACK = timedelta(days=2)


class TenantActor(Entity):
    kind = "tenant"

    async def activate(self) -> None:
        row = await self.ctx.pool.fetchrow("SELECT * FROM tenants WHERE id = $1",
                                           uuid.UUID(self.key))
        if row is None:
            raise LookupError(f"tenant {self.key} does not exist")
        self.state: dict[str, Any] = record_to_dict(row)
        self.tenant_id: uuid.UUID = row["id"]

    def _order(self, order_id: uuid.UUID, message_type: str,
               payload: dict[str, Any] | None = None) -> Envelope:
        return Envelope("order", str(order_id), message_type, self.key,
                        {**(payload or {}), "order_id": str(order_id)}, durable=True)

    @query("tenant.get")
    async def get(self, envelope: Envelope) -> dict[str, Any]:
        return dict(self.state)

    # --- Shopify ------------------------------------------------------------------------

    @command("shopify.webhook")
    async def shopify_webhook(self, envelope: Envelope, conn: Connection) -> str:
        row = await self._inbox(conn, envelope)
        if row is None:
            return "already processed"
        if row["topic"] not in ORDER_TOPICS:
            await self._processed(conn, row["id"])
            return "ignored"
        try:
            order = ShopifyOrder.model_validate(json.loads(row["body"]))
        except (ValidationError, ValueError) as error:
            await self._processed(conn, row["id"], f"not an order payload: {error}"[:500])
            return "rejected"
        result = await self.ingest(conn, order, row["topic"])
        await self._processed(conn, row["id"])
        return result

    async def ingest(self, conn: Connection, order: ShopifyOrder, topic: str) -> str:
        """One path for webhooks and backfill: create once, update newer, cancel when asked."""
        order_id, created = await store.insert_order(conn, self.tenant_id, order)
        if created:
            await enqueue(conn, self._order(order_id, "order.start"))
        elif topic == "orders/updated":
            await store.update_order(conn, self.tenant_id, order)
        if topic == "orders/cancelled" or order.cancelled_at is not None:
            reason = order.cancel_reason or "cancelled in Shopify"
            await enqueue(conn, self._order(order_id, "order.cancel", {"reason": reason}))
            return "cancelling"
        return "created" if created else "known"

    @step("tenant.backfill")
    async def backfill(self, envelope: Envelope) -> int:
        """Orders Shopify created while its webhooks did not reach us."""
        shop = await load_integration(self.ctx.pool, self.tenant_id, ShopifySettings)
        if shop is None:
            return 0
        since = datetime.now(UTC) - BACKFILL_LOOKBACK
        created = 0
        async with shop.client() as client:
            async for remote in client.iter_orders(created_at_min=since, status="any"):
                async with self.ctx.pool.acquire() as conn, conn.transaction():
                    known = await conn.fetchval(
                        "SELECT status FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
                        self.tenant_id, remote.id)
                    if known is not None and (remote.cancelled_at is None or known == "CANCELLED"):
                        continue
                    try:
                        order = ShopifyOrder.model_validate(remote.raw)
                    except ValidationError:
                        continue
                    await self.ingest(conn, order, "orders/create")
                    created += known is None
        return created

    # --- SimplyPrint --------------------------------------------------------------------

    @step("farm.webhook")
    async def farm_webhook(self, envelope: Envelope) -> str:
        async with self.ctx.pool.acquire() as conn:
            row = await self._inbox(conn, envelope)
        if row is None:
            return "already processed"
        body = json.loads(row["body"])
        status = WEBHOOK_STATUS.get(body.get("event", ""))
        job = (body.get("data") or {}).get("job") or {}
        printer = job.get("printer_id") or (job.get("printer") or {}).get("id") or (
            (body.get("data") or {}).get("printer") or {}).get("id")
        # The printer's entity hears every job.* / printer.* event about it (live state).
        ours_printer = printer and await self.ctx.pool.fetchval(
            "SELECT id FROM printers WHERE tenant_id = $1 AND farm_printer_id = $2",
            self.tenant_id, int(printer))
        forward = uuid.uuid5(uuid.NAMESPACE_URL, f"forma3d:inbox:{row['id']}")
        if ours_printer and not await self.ctx.pool.fetchval(
                "SELECT true FROM outbox WHERE message_id = $1", forward):
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                await enqueue(conn, Envelope("printer", str(ours_printer), "printer.farm_event",
                                             self.key, {"event": body.get("event"), "job": job,
                                                        "at": body.get("timestamp")},
                                             message_id=str(forward), durable=True))
        if status is None or not job.get("uid"):
            await self._processed(self.ctx.pool, row["id"])
            return "ignored"
        ours = await self._job_for_farm_job(str(job["uid"]), printer)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            if ours is not None:
                at = datetime.fromtimestamp(int(body.get("timestamp") or 0) or
                                            datetime.now(UTC).timestamp(), UTC)
                update = JobUpdate(str(ours["id"]), status, at, ours["farm_queue_item_id"],
                                   str(job["uid"]), printer,
                                   job.get("failedReason") or f"farm event {body['event']}")
                await enqueue(conn, self._order(ours["order_id"], "job.status", update.payload()))
            await self._processed(conn, row["id"], None if ours else "not one of our jobs")
        return "forwarded" if ours else "unknown job"

    async def _job_for_farm_job(self, uid: str, printer: int | None) -> dict[str, Any] | None:
        """Our job for a farm job: by its uid, else by its queue item in the job history."""
        found = await self.ctx.pool.fetchrow(
            "SELECT * FROM print_jobs WHERE tenant_id = $1 AND farm_job_uid = $2",
            self.tenant_id, uid)
        if found is not None:
            return record_to_dict(found)
        sp = await load_integration(self.ctx.pool, self.tenant_id, SimplyPrintSettings)
        if sp is None:
            return None
        async with sp.client() as client:
            page = await client.get_print_jobs(printer_ids=[printer] if printer else None,
                                               page_size=50)
        item = next(((j.queue_item or {}).get("id") for j in page.jobs if j.uid == uid), None)
        if item is None:
            return None
        found = await self.ctx.pool.fetchrow(
            "SELECT * FROM print_jobs WHERE tenant_id = $1 AND farm_queue_item_id = $2",
            self.tenant_id, int(item))
        return record_to_dict(found) if found else None

    @step("tenant.reconcile")
    async def reconcile_farm(self, envelope: Envelope) -> int:
        """Compare active jobs with the farm's queue and history; send what differs."""
        active = [record_to_dict(r) for r in await self.ctx.pool.fetch(
            "SELECT * FROM print_jobs WHERE tenant_id = $1 AND status IN ('QUEUED', 'PRINTING')"
            " AND farm_queue_item_id IS NOT NULL", self.tenant_id)]
        sp = await load_integration(self.ctx.pool, self.tenant_id, SimplyPrintSettings)
        if not active or sp is None:
            return 0
        settings = await tenant_settings(self.ctx.pool, self.tenant_id)
        oldest = min((j["queued_at"] for j in active if j["queued_at"]),
                     default=datetime.now(UTC))
        async with sp.client() as client:
            listing = await client.get_queue_items()
            history = []
            page_number = 1
            while page_number <= 20:
                page = await client.get_print_jobs(page=page_number, page_size=100,
                                                   start_date=int(oldest.timestamp()) - 3600)
                history.extend(page.jobs)
                if page_number >= page.page_amount:
                    break
                page_number += 1
        updates = reconcile(active, {i.id for i in listing.items}, history,
                            now=datetime.now(UTC),
                            grace=timedelta(seconds=settings.stranded_job_seconds))
        orders = {str(j["id"]): j["order_id"] for j in active}
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            for update in updates:
                await enqueue(conn, self._order(orders[update.print_job_id], "job.status",
                                                update.payload()))
        return len(updates)

    # --- Sendcloud ----------------------------------------------------------------------

    @command("sendcloud.webhook")
    async def sendcloud_webhook(self, envelope: Envelope, conn: Connection) -> str:
        row = await self._inbox(conn, envelope)
        if row is None:
            return "already processed"
        body = json.loads(row["body"])
        parcel = body.get("parcel") or {}
        if body.get("action") != "parcel_status_changed" or not parcel.get("id"):
            await self._processed(conn, row["id"])
            return "ignored"
        order_id = await conn.fetchval(
            "SELECT order_id FROM shipments WHERE tenant_id = $1 AND parcel_id = $2",
            self.tenant_id, int(parcel["id"]))
        if order_id is not None:
            stamp = int(body.get("timestamp") or 0) / 1000
            await enqueue(conn, self._order(order_id, "shipment.status", {
                "status_id": (parcel.get("status") or {}).get("id"),
                "message": (parcel.get("status") or {}).get("message"),
                "at": datetime.fromtimestamp(stamp, UTC).isoformat()}))
        await self._processed(conn, row["id"], None if order_id else "unknown parcel")
        return "forwarded" if order_id else "unknown parcel"

    # --- mappings -----------------------------------------------------------------------

    @command("mapping.changed")
    async def mapping_changed(self, envelope: Envelope, conn: Connection) -> int:
        """A new or changed product mapping resumes orders held for its SKU (GridFlock items
        map through `mapping_sku` and may be GENERATING while their pipeline runs)."""
        orders = await conn.fetch(
            "SELECT DISTINCT order_id FROM line_items WHERE tenant_id = $1"
            " AND (sku = $2 OR mapping_sku = $2) AND status IN ('NEEDS_MAPPING', 'GENERATING')",
            self.tenant_id, envelope.payload["sku"])
        for row in orders:
            await enqueue(conn, self._order(row["order_id"], "order.start"))
        return len(orders)

    # --- stock --------------------------------------------------------------------------

    @command("stock.adjust")
    async def adjust_stock(self, envelope: Envelope, conn: Connection) -> int:
        """Apply a signed stock change as an immutable ledger entry; returns the new level."""
        sku = str(envelope.payload["sku"])
        delta = int(envelope.payload["quantity"])
        kind = str(envelope.payload.get("transaction_type", "ADJUSTED"))
        if delta == 0:
            raise ValueError("stock.adjust quantity must not be zero")
        level: int = await conn.fetchval(
            """INSERT INTO stock_levels (tenant_id, sku, quantity) VALUES ($1, $2, $3)
               ON CONFLICT (tenant_id, sku) DO UPDATE
               SET quantity = stock_levels.quantity + EXCLUDED.quantity, updated_at = now()
               RETURNING quantity""",
            self.tenant_id, sku, delta,
        )
        if level < 0:
            raise ValueError(f"stock of {sku} would go negative ({level})")
        await conn.execute(
            """INSERT INTO stock_ledger
                   (tenant_id, sku, transaction_type, direction, quantity, reason, message_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            self.tenant_id, sku, kind, "IN" if delta > 0 else "OUT", abs(delta),
            envelope.payload.get("reason"), uuid.UUID(envelope.message_id),
        )
        return level

    # --- inbox --------------------------------------------------------------------------

    async def _inbox(self, conn: Connection, envelope: Envelope) -> dict[str, Any] | None:
        row = await conn.fetchrow(
            "SELECT * FROM webhook_inbox WHERE tenant_id = $1 AND id = $2",
            self.tenant_id, int(envelope.payload["inbox_id"]))
        if row is None or row["processed_at"] is not None:
            return None
        return record_to_dict(row)

    async def _processed(self, db: Any, inbox_id: int, error: str | None = None) -> None:
        await db.execute("UPDATE webhook_inbox SET processed_at = now(), error = $2 WHERE id = $1",
                         inbox_id, error)
