"""The webhook sender without Ray, against a real receiver on a loopback port: signed
deliveries in order per subject, retries with backoff, a failing subscription switched off
(event and audit entry) with nothing lost, and a target refused again at delivery time."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta

import pytest

from actors.webhooks import SenderConfig, WebhookSender
from forma3d.db.pool import Pool
from forma3d.domain.events import EventType
from forma3d.domain.orders.states import OrderStatus
from forma3d.domain.shipping.states import ShipmentStatus
from forma3d.store import orders, shipments, webhooks
from forma3d.store.events import record
from forma3d.store.tenants import create_tenant
from tests.actors.hook_receiver import HookReceiver, serve
from tests.forma3d.store.test_orders import new_order
from tests.polling import eventually

pytestmark = pytest.mark.db
FAST = SenderConfig(retry_base=0.01, retry_cap=0.05, max_failures=3, allow_loopback=False)


async def private_tenant(pool: Pool) -> uuid.UUID:
    """A tenant that allows private targets (the test receiver listens on loopback)."""
    return await create_tenant(pool, f"hooks-{uuid.uuid4().hex[:10]}",
                               settings={"webhooks_allow_private": True})


async def printer_events(pool: Pool, tenant_id: uuid.UUID, subjects: int, per_subject: int,
                         ) -> None:
    for n in range(per_subject):
        for s in range(subjects):
            async with pool.acquire() as conn, conn.transaction():
                await record(conn, EventType.PRINTER_CHANGED, tenant_id, {
                    "printer_id": f"p{s}", "before": {"n": n - 1}, "after": {"n": n}},
                    subject=("printer", f"p{s}"))


async def drain(sender: WebhookSender, pool: Pool, subscription_id: uuid.UUID) -> None:
    async def done() -> bool:
        await sender.send_once()
        pending = await pool.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = $1"
            " AND status = 'PENDING'", subscription_id)
        return bool(pending == 0)

    await eventually(done, interval=0.01, what="every delivery sent")


async def test_deliveries_are_signed_and_in_order_per_subject(db_pool: Pool) -> None:
    tenant_id = await private_tenant(db_pool)
    receiver = HookReceiver()
    sender = WebhookSender(db_pool, FAST)
    async with serve(receiver) as url:
        subscription, receiver.secret = await webhooks.create_subscription(
            db_pool, tenant_id, url, ["printer.changed"])
        async with db_pool.acquire() as conn, conn.transaction():  # not subscribed to
            await record(conn, EventType.STOCK_SETTINGS_CHANGED, tenant_id,
                         {"before": {}, "after": {}})
        await printer_events(db_pool, tenant_id, subjects=4, per_subject=15)
        await drain(sender, db_pool, subscription.id)
        await webhooks.update_subscription(db_pool, tenant_id, subscription.id,
                                           {"enabled": False})
    await sender.close()

    assert receiver.bad_signatures == 0
    got = receiver.firsts()
    assert len(got) == 60 and {r.payload["type"] for r in got} == {"printer.changed"}
    per_subject: dict[str, list[int]] = defaultdict(list)
    for item in got:
        assert item.webhook_id == item.payload["id"]
        assert item.payload["tenant_id"] == str(tenant_id) and item.payload["timestamp"]
        per_subject[item.payload["subject"]["id"]].append(item.payload["data"]["after"]["n"])
    assert per_subject == {f"p{s}": list(range(15)) for s in range(4)}
    statuses = await db_pool.fetch(
        "SELECT status, attempts, last_status FROM webhook_deliveries WHERE subscription_id = $1",
        subscription.id)
    assert {(r["status"], r["attempts"], r["last_status"]) for r in statuses} == {
        ("DELIVERED", 1, 204)}


async def test_a_failing_receiver_is_retried_then_switched_off_and_nothing_is_lost(
        db_pool: Pool) -> None:
    tenant_id = await private_tenant(db_pool)
    receiver = HookReceiver(status=500)
    sender = WebhookSender(db_pool, FAST)
    async with serve(receiver) as url:
        subscription, receiver.secret = await webhooks.create_subscription(
            db_pool, tenant_id, url, ["*"])
        await printer_events(db_pool, tenant_id, subjects=1, per_subject=2)

        async def switched_off() -> bool:
            await sender.send_once()
            found = await webhooks.get_subscription(db_pool, tenant_id, subscription.id)
            return found is not None and not found.enabled

        await eventually(switched_off, interval=0.01, what="the subscription switched off")
        assert receiver.attempts == 3 and receiver.bad_signatures == 0  # retried, signed
        off = await webhooks.get_subscription(db_pool, tenant_id, subscription.id)
        assert off is not None and off.disabled_reason == "3 failed deliveries in a row"
        first, second = await db_pool.fetch(
            "SELECT status, attempts, last_status, last_error FROM webhook_deliveries"
            " WHERE subscription_id = $1 ORDER BY id", subscription.id)
        assert (first["status"], first["attempts"], first["last_status"]) == (
            "PENDING", 3, 500)
        assert first["last_error"] == "HTTP 500"
        assert (second["status"], second["attempts"]) == ("PENDING", 0)  # waits in order
        disabled = await db_pool.fetchrow(
            "SELECT data FROM event_log WHERE tenant_id = $1 AND type = $2", tenant_id,
            EventType.WEBHOOK_SUBSCRIPTION_DISABLED.value)
        assert disabled["data"]["subscription_id"] == str(subscription.id)
        trail = await db_pool.fetchrow(
            "SELECT actor_kind, target_id, after FROM audit_log WHERE tenant_id = $1"
            " AND action = 'webhook_subscription.disabled'", tenant_id)
        assert (trail["actor_kind"], trail["target_id"]) == ("system", str(subscription.id))
        assert await sender.send_once() == 0  # a switched-off subscription sends nothing

        # Switched on again with a healthy receiver: what waited goes out, in order.
        receiver.status = 204
        await webhooks.update_subscription(db_pool, tenant_id, subscription.id,
                                           {"enabled": True})
        await drain(sender, db_pool, subscription.id)
        await webhooks.update_subscription(db_pool, tenant_id, subscription.id,
                                           {"enabled": False})
    await sender.close()
    assert [r.payload["data"]["after"]["n"] for r in receiver.firsts()] == [0, 1]


async def test_a_target_the_tenant_no_longer_allows_is_refused_at_delivery(
        db_pool: Pool) -> None:
    tenant_id = await private_tenant(db_pool)
    receiver = HookReceiver()
    sender = WebhookSender(db_pool, FAST)
    async with serve(receiver) as url:
        subscription, receiver.secret = await webhooks.create_subscription(
            db_pool, tenant_id, url, ["printer.changed"])
        await db_pool.execute("UPDATE tenants SET settings = '{}' WHERE id = $1", tenant_id)
        await printer_events(db_pool, tenant_id, subjects=1, per_subject=1)
        await eventually(lambda: sender.send_once(), interval=0.01, what="an attempt")
    await sender.close()
    assert receiver.attempts == 0
    error = await db_pool.fetchval(
        "SELECT last_error FROM webhook_deliveries WHERE subscription_id = $1", subscription.id)
    assert error.startswith("target refused:") and "loopback" in error
    await webhooks.update_subscription(db_pool, tenant_id, subscription.id, {"enabled": False})


async def test_order_milestones_become_deliveries(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    """printing, ready, shipped (once), delivered: the order events a shop automates on."""
    subscription, _ = await webhooks.create_subscription(
        db_pool, tenant_id, "https://93.184.216.34/hook",
        ["order.created", "order.printing", "order.ready-for-fulfillment", "order.shipped",
         "order.delivered", "order.cancelled"])
    order_id = await new_order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        order = await orders.get_order(conn, order_id, lock=True)
        assert order is not None
        await orders.set_order_status(conn, order, OrderStatus.PROCESSING)
        await orders.set_order_status(conn, order, OrderStatus.READY_FOR_FULFILLMENT,
                                      parts_total=1, parts_completed=1)
        shipment = await shipments.ensure_shipment(conn, tenant_id, order_id)
        for status in (ShipmentStatus.LABEL_CREATED, ShipmentStatus.IN_TRANSIT,
                       ShipmentStatus.EXCEPTION, ShipmentStatus.IN_TRANSIT,
                       ShipmentStatus.DELIVERED):
            await shipments.set_shipment_status(conn, shipment, status)
    await webhooks.update_subscription(db_pool, tenant_id, subscription.id, {"enabled": False})
    rows = await db_pool.fetch(
        "SELECT event_type, subject, payload FROM webhook_deliveries"
        " WHERE subscription_id = $1 ORDER BY id", subscription.id)
    assert [r["event_type"] for r in rows] == [
        "order.created", "order.printing", "order.ready-for-fulfillment", "order.shipped",
        "order.delivered"]
    assert {r["subject"] for r in rows} == {f"order:{order_id}"}
    assert rows[1]["payload"]["data"]["previous_status"] == "PENDING"
    assert rows[4]["payload"]["data"]["shipment_id"] == str(shipment.id)


def test_the_rule_thresholds_come_from_settings() -> None:
    from forma3d.config import Settings

    config = SenderConfig.of(Settings(FORMA3D_WEBHOOK_MAX_FAILURES=4,  # type: ignore[call-arg]
                                      FORMA3D_WEBHOOK_MAX_FAILING_HOURS=2))
    assert (config.max_failures, config.max_failing) == (4, timedelta(hours=2))
