"""The order entity's handlers, called directly (no Ray) against PostgreSQL and the in-process
Shopify, SimplyPrint and Sendcloud simulators: each command and step, its rows, its events and
the messages it sends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from shop_orders import new_order, started

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.domain.statemachine import IllegalTransition
from forma3d.handlers import order as handlers
from forma3d.handlers.order import Order
from forma3d.handlers.testing import stub_services
from forma3d.messaging.order import (
    CancelJob,
    CancelOrder,
    ForceJobStatus,
    JobStatusReport,
    RetryJob,
    ShipmentStatusReport,
    ShipOrder,
    StartOrder,
    SubmitJobs,
)
from forma3d.messaging.refusals import Conflict, NotFound
from forma3d.store import shipments
from sandbox.server import serve_sandboxes
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config

pytestmark = pytest.mark.db
T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture
async def shop(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    """A tenant connected to its own simulators; queue items wait (no auto print), parcels rest
    where they are put, so the test drives every job and shipment status itself."""
    config = sandbox_config(auto_print=False)
    config.sendcloud.status_interval = 10**7
    running = await serve_sandboxes(config)
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config)
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


async def command(order: Order, fn: Any, message: Any) -> Any:
    async with order.pool.acquire() as conn, conn.transaction():
        return await fn(order, message, conn)


async def report(order: Order, job: dict[str, Any], status: str, **more: Any) -> str:
    result: str = await command(order, handlers.job_status, JobStatusReport(
        tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=job["id"],
        status=status, queue_item_id=job["farm_queue_item_id"], **more))
    return result


async def jobs(order: Order) -> list[dict[str, Any]]:
    return [dict(r) for r in await order.pool.fetch(
        "SELECT * FROM print_jobs WHERE order_id = $1 ORDER BY job_key", order.order_id)]


async def order_row(order: Order) -> dict[str, Any]:
    return dict(await order.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order.order_id))


async def item_statuses(order: Order) -> list[str]:
    return [r["status"] for r in await order.pool.fetch(
        "SELECT status FROM line_items WHERE order_id = $1 ORDER BY shopify_line_item_id",
        order.order_id)]


async def outbox(order: Order, message_type: str) -> list[dict[str, Any]]:
    rows = await order.pool.fetch(
        "SELECT target_key, payload FROM outbox WHERE tenant_id = $1 AND message_type = $2"
        " ORDER BY id", order.tenant_id, message_type)
    return [{"key": r["target_key"], **r["payload"]} for r in rows]


async def events(order: Order, *types: str) -> list[dict[str, Any]]:
    rows = await order.pool.fetch("SELECT type, data FROM event_log WHERE tenant_id = $1"
                                  " AND type = ANY($2) ORDER BY id", order.tenant_id, list(types))
    return [{"type": r["type"], **r["data"]} for r in rows]


async def on_printer(order: Order, job: dict[str, Any]) -> uuid.UUID:
    """The job reported printing on a printer row of ours (what smart dispatch leaves)."""
    printer_id = uuid.uuid4()
    await order.pool.execute("INSERT INTO printers (id, tenant_id, name) VALUES ($1, $2, 'MK4')",
                             printer_id, order.tenant_id)
    assert await report(order, job, "PRINTING", farm_printer_id=7) == "applied"
    await order.pool.execute("UPDATE print_jobs SET printer_id = $2 WHERE id = $1", job["id"],
                             printer_id)
    return printer_id


async def test_a_missing_order_does_not_load(db_pool: Pool) -> None:
    services, _ = stub_services(db_pool)
    with pytest.raises(LookupError, match="does not exist"):
        await handlers.load(services, str(uuid.uuid4()))


async def test_start_queues_every_part_on_the_farm_once(shop: Farm) -> None:
    order = await new_order(shop, [("VASE-SPIRAL-PLA-WHITE", 1), ("BENCHY-PLA-RED", 2)])
    message = StartOrder(tenant_id=order.tenant_id, order_id=order.order_id)
    assert await handlers.start(order, message) == 4
    assert await handlers.start(order, message) == 0  # a redelivery repeats nothing
    found = await jobs(order)
    assert {j["status"] for j in found} == {"QUEUED"}
    items = {j["farm_queue_item_id"] for j in found}
    assert None not in items and len(items) == 4
    assert len(shop.sandboxes.sandboxes.simplyprint.farm.open_items()) == 4
    assert (await order_row(order))["status"] == "PROCESSING"
    assert await item_statuses(order) == ["PRINTING", "PRINTING"]
    changes = await events(order, "order.status-changed", "line-item.status-changed")
    assert [(e["type"], e["new_status"]) for e in changes] == [
        ("line-item.status-changed", "PRINTING"), ("line-item.status-changed", "PRINTING"),
        ("order.status-changed", "PROCESSING")]


async def test_an_unmapped_sku_holds_the_order_with_its_reason(shop: Farm) -> None:
    order = await started(shop, [("MYSTERY-SKU", 1)])
    row = await order_row(order)
    assert row["status"] == "ON_HOLD" and "MYSTERY-SKU" in row["reason"]
    assert await item_statuses(order) == ["NEEDS_MAPPING"]
    assert await handlers.submit(order, SubmitJobs(tenant_id=order.tenant_id,
                                                   order_id=order.order_id)) == 0


async def test_printed_jobs_make_the_order_ready_and_shipping_fulfils_it(shop: Farm) -> None:
    order = await started(shop, [("VASE-SPIRAL-PLA-WHITE", 1)])
    for job in await jobs(order):
        assert await report(order, job, "PRINTING", at=T0) == "applied"
        assert await report(order, job, "PRINTING", at=T0) == "ignored"
        assert await report(order, job, "COMPLETED", at=T0 + timedelta(hours=1)) == "applied"
    row = await order_row(order)
    assert (row["status"], row["parts_completed"], row["parts_total"]) == (
        "READY_FOR_FULFILLMENT", 2, 2)
    assert [m["key"] for m in await outbox(order, "order.ship")] == [str(order.order_id)]

    ship = ShipOrder(tenant_id=order.tenant_id, order_id=order.order_id)
    assert await handlers.ship(order, ship) == "fulfilled"
    assert await handlers.ship(order, ship) == "not ready"
    assert (await order_row(order))["status"] == "FULFILLED"
    shipment = await shipments.get_shipment(order.pool, order.tenant_id, order.order_id)
    assert shipment is not None and shipment.parcel_id is not None
    assert shipment.shopify_fulfillment_id is not None
    assert shop.shopify.fulfillments[shipment.shopify_fulfillment_id]["tracking_number"] == \
        shipment.tracking_number
    found = await events(order, "shipment.created", "shipment.status-changed",
                         "order.fulfilled", "order.ready-for-fulfillment")
    assert [e["type"] for e in found] == [
        "order.ready-for-fulfillment", "shipment.status-changed", "shipment.created",
        "order.fulfilled"]
    assert found[3]["tracking_number"] == shipment.tracking_number


async def test_a_farm_time_ahead_of_ours_is_stored_as_when_we_heard_it(shop: Farm) -> None:
    """The sandbox farm at a speed-up (or a farm whose clock runs ahead) stamps events in the
    future: the job keeps our time of hearing it, so per-hour counts see the completion."""
    order = await started(shop, [("BENCHY-PLA-RED", 1)])
    [job] = await jobs(order)
    ahead = datetime.now(UTC) + timedelta(hours=10)
    assert await report(order, job, "PRINTING", at=T0) == "applied"
    before = datetime.now(UTC)
    assert await report(order, job, "COMPLETED", at=ahead) == "applied"
    after = datetime.now(UTC)
    [done] = await jobs(order)
    assert done["started_at"] == T0  # a past time is the farm's own
    assert before <= done["completed_at"] <= after
    assert done["status_at"] == done["completed_at"]


async def test_a_failed_print_is_requeued_and_a_retry_revives_the_failed_order(
        shop: Farm) -> None:
    await shop.pool.execute("UPDATE tenants SET settings = settings || '{\"max_print_attempts\":"
                            " 2}' WHERE id = $1", shop.tenant_id)
    order = await started(shop, [("BENCHY-PLA-RED", 1)])
    [first] = await jobs(order)
    assert await report(order, first, "FAILED", error="spaghetti") == "applied"
    [job] = await jobs(order)
    assert (job["status"], job["attempts"], job["farm_queue_item_id"]) == ("QUEUED", 1, None)
    assert len(await outbox(order, "order.submit")) == 1
    assert (await order_row(order))["status"] == "PROCESSING"

    assert await handlers.submit(order, SubmitJobs(tenant_id=order.tenant_id,
                                                   order_id=order.order_id)) == 1
    [job] = await jobs(order)
    assert job["farm_queue_item_id"] not in (None, first["farm_queue_item_id"])
    assert await report(order, first, "FAILED") == "stale: an earlier attempt"
    assert await report(order, job, "FAILED", error="spaghetti") == "applied"
    [job] = await jobs(order)
    assert (job["status"], job["attempts"]) == ("FAILED", 2)
    assert await item_statuses(order) == ["FAILED"]
    assert (await order_row(order))["status"] == "FAILED"

    assert await command(order, handlers.retry, RetryJob(
        tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=job["id"])) == "queued"
    [job] = await jobs(order)
    assert (job["status"], job["max_attempts"], job["error"]) == ("QUEUED", 4, None)
    assert await item_statuses(order) == ["PRINTING"]
    assert (await order_row(order))["status"] == "PROCESSING"
    assert len(await outbox(order, "order.submit")) == 2
    changes = await events(order, "print-job.status-changed")
    assert [(e["previous_status"], e["new_status"]) for e in changes] == [
        ("PENDING", "QUEUED"), ("QUEUED", "FAILED"), ("FAILED", "QUEUED"),
        ("QUEUED", "FAILED"), ("FAILED", "QUEUED")]
    with pytest.raises(Conflict, match="only FAILED or CANCELLED retry"):
        await command(order, handlers.retry, RetryJob(
            tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=job["id"]))
    assert await command(order, handlers.job_status, JobStatusReport(
        tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=uuid.uuid4(),
        status="COMPLETED")) == "unknown job"


async def test_shipment_reports_apply_in_time_order_and_keep_unknown_ids(shop: Farm) -> None:
    order = await new_order(shop, [("BENCHY-PLA-RED", 1)])

    async def status(status_id: int, at: datetime) -> str:
        result: str = await command(order, handlers.shipment_status, ShipmentStatusReport(
            tenant_id=order.tenant_id, order_id=order.order_id, status_id=status_id,
            message=f"status {status_id}", at=at))
        return result

    assert await status(1, T0) == "no shipment"
    async with order.pool.acquire() as conn:
        await shipments.ensure_shipment(conn, order.tenant_id, order.order_id)
    assert await status(1, T0) == "ANNOUNCED"
    assert await status(3, T0 - timedelta(minutes=1)) == "stale"
    assert await status(424242, T0 + timedelta(minutes=1)) == "ANNOUNCED"
    assert await status(11, T0 + timedelta(minutes=2)) == "DELIVERED"
    assert await status(1, T0 + timedelta(minutes=3)) == "DELIVERED"  # late milestone
    row = await order.pool.fetchrow("SELECT status, carrier_status_id, status_at FROM shipments"
                                    " WHERE order_id = $1", order.order_id)
    assert tuple(row) == ("DELIVERED", 1, T0 + timedelta(minutes=3))
    changes = await events(order, "shipment.status-changed")
    assert [(e["previous_status"], e["new_status"], e["sendcloud_status_id"])
            for e in changes] == [("PENDING", "ANNOUNCED", 1), ("ANNOUNCED", "DELIVERED", 11)]


async def test_an_operator_cancels_a_printing_job_and_its_printer_is_stopped(
        shop: Farm) -> None:
    order = await started(shop, [("BENCHY-PLA-RED", 1)])
    [job] = await jobs(order)
    printer_id = await on_printer(order, job)
    message = CancelJob(tenant_id=order.tenant_id, order_id=order.order_id,
                        print_job_id=job["id"])
    assert await command(order, handlers.cancel_job, message) == "CANCELLED"
    [job] = await jobs(order)
    assert (job["status"], job["error"]) == ("CANCELLED", "cancelled by an operator")
    assert await item_statuses(order) == ["FAILED"]
    assert (await order_row(order))["status"] == "FAILED"
    assert await outbox(order, "printer.control") == [
        {"key": str(printer_id), "printer_id": str(printer_id), "action": "cancel",
         "comment": "cancelled by an operator"}]
    [logged] = await events(order, "print-job.queue-changed")
    assert (logged["action"], logged["before"], logged["after"]) == (
        "cancel", {"status": "PRINTING"}, {"status": "CANCELLED"})
    with pytest.raises(Conflict, match="it cannot be cancelled"):
        await command(order, handlers.cancel_job, message)
    with pytest.raises(NotFound, match="not found"):
        await command(order, handlers.cancel_job, message.model_copy(
            update={"print_job_id": uuid.uuid4()}))


async def test_forcing_a_job_off_its_printer_releases_the_printer(shop: Farm) -> None:
    order = await started(shop, [("BENCHY-PLA-RED", 2)])
    printing, queued = await jobs(order)
    printer_id = await on_printer(order, printing)

    def force(job: dict[str, Any], status: str) -> ForceJobStatus:
        return ForceJobStatus(tenant_id=order.tenant_id, order_id=order.order_id,
                              print_job_id=job["id"], status=status, reason="checked by hand",
                              by="api key ops (f3d_1234)")

    assert await command(order, handlers.force_status, force(printing, "COMPLETED")) == \
        "COMPLETED"
    with pytest.raises(Conflict, match="already COMPLETED"):
        await command(order, handlers.force_status, force(printing, "COMPLETED"))
    assert await outbox(order, "printer.release") == [
        {"key": str(printer_id), "printer_id": str(printer_id),
         "print_job_id": str(printing["id"])}]
    assert await command(order, handlers.force_status, force(queued, "COMPLETED")) == \
        "COMPLETED"
    assert len(await outbox(order, "printer.release")) == 1  # the queued job had no printer
    rows = await jobs(order)
    assert [(j["status"], j["printer_id"], j["error"]) for j in rows] == [
        ("COMPLETED", None, "forced: checked by hand")] * 2
    assert (await order_row(order))["status"] == "READY_FOR_FULFILLMENT"
    assert len(await outbox(order, "order.ship")) == 1
    audit = await events(order, "print-job.force-status")
    assert [(a["before"]["status"], a["after"]["status"], a["by"]) for a in audit] == [
        ("PRINTING", "COMPLETED", "api key ops (f3d_1234)"),
        ("QUEUED", "COMPLETED", "api key ops (f3d_1234)")]
    changes = await events(order, "print-job.status-changed")
    assert [(e["previous_status"], e["new_status"]) for e in changes][-2:] == [
        ("PRINTING", "COMPLETED"), ("QUEUED", "COMPLETED")]


async def test_cancelling_takes_the_jobs_off_the_farm_and_cancels_every_row(shop: Farm) -> None:
    order = await started(shop, [("VASE-SPIRAL-PLA-WHITE", 1)])
    assert len(shop.sandboxes.sandboxes.simplyprint.farm.open_items()) == 2
    message = CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id, reason="customer")
    assert await handlers.cancel(order, message) == "cancelled"
    assert await handlers.cancel(order, message) == "already cancelled"
    assert shop.sandboxes.sandboxes.simplyprint.farm.open_items() == []
    assert {j["status"] for j in await jobs(order)} == {"CANCELLED"}
    assert await item_statuses(order) == ["CANCELLED"]
    row = await order_row(order)
    assert (row["status"], row["reason"]) == ("CANCELLED", "customer")
    assert row["cancelled_at"] is not None
    [cancelled] = await events(order, "order.cancelled")
    assert cancelled["reason"] == "customer"
    [job, _] = await jobs(order)
    assert await report(order, job, "FAILED") == "order cancelled"
    with pytest.raises(Conflict, match="order is cancelled"):
        await command(order, handlers.retry, RetryJob(
            tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=job["id"]))


async def test_cancelling_after_the_label_cancels_the_parcel(shop: Farm) -> None:
    order = await started(shop, [("BENCHY-PLA-RED", 1)])
    [job] = await jobs(order)
    assert await report(order, job, "COMPLETED") == "applied"
    await shop.pool.execute("UPDATE integrations SET enabled = false WHERE tenant_id = $1"
                            " AND service = 'shopify'", shop.tenant_id)
    assert await handlers.ship(order, ShipOrder(tenant_id=order.tenant_id,
                                                order_id=order.order_id)) == "fulfilment refused"
    shipment = await shipments.get_shipment(order.pool, order.tenant_id, order.order_id)
    assert shipment is not None and shipment.parcel_id is not None
    assert await handlers.cancel(order, CancelOrder(
        tenant_id=order.tenant_id, order_id=order.order_id)) == "cancelled"
    shipment = await shipments.get_shipment(order.pool, order.tenant_id, order.order_id)
    assert shipment is not None and shipment.status in ("CANCELLED", "CANCEL_REQUESTED")
    assert shipment.shopify_fulfillment_id is None
    changes = await events(order, "shipment.status-changed")
    assert [e["new_status"] for e in changes] == ["LABEL_CREATED", shipment.status]
    row = await order_row(order)
    assert (row["status"], row["reason"]) == ("CANCELLED", "cancelled")


async def test_a_shipped_order_cannot_be_cancelled(shop: Farm) -> None:
    order = await started(shop, [("BENCHY-PLA-RED", 1)])
    [job] = await jobs(order)
    await report(order, job, "COMPLETED")
    assert await handlers.ship(order, ShipOrder(tenant_id=order.tenant_id,
                                                order_id=order.order_id)) == "fulfilled"
    with pytest.raises(IllegalTransition, match="FULFILLED -> CANCELLED"):
        await handlers.cancel(order, CancelOrder(tenant_id=order.tenant_id,
                                                 order_id=order.order_id))


async def test_with_cancel_printing_jobs_off_a_running_print_is_left_to_finish(
        shop: Farm) -> None:
    await shop.pool.execute("UPDATE tenants SET settings = settings ||"
                            " '{\"cancel_printing_jobs\": false}' WHERE id = $1", shop.tenant_id)
    await shop.control("simplyprint", "clock", {"speedup": 1})  # prints last an hour
    order = await started(shop, [("BENCHY-PLA-RED", 1), ("VASE-SPIRAL-PLA-WHITE", 1)])
    simulated = shop.sandboxes.sandboxes.simplyprint.farm
    benchy = (await jobs(order))[0]
    [item] = [i for i in simulated.open_items() if i.id == benchy["farm_queue_item_id"]]
    printer = next(p for p in simulated.printers.values()
                   if simulated.ready(p) and simulated.matches(p, item))
    running = simulated.start(printer, item.file, item=item, autoprint=True)
    assert await report(order, benchy, "PRINTING", farm_printer_id=printer.id,
                        farm_job_uid=running.uid) == "applied"

    message = CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id, reason="customer")
    assert await handlers.cancel(order, message) == "cancelled"
    assert running.state == "printing"  # the print was not stopped
    assert simulated.open_items() == []  # what had not started is off the farm
    statuses = {j["id"]: j["status"] for j in await jobs(order)}
    assert statuses.pop(benchy["id"]) == "PRINTING"
    assert set(statuses.values()) == {"CANCELLED"}
    assert (await order_row(order))["status"] == "CANCELLED"


async def test_more_concurrent_order_handlers_than_pool_connections_do_not_deadlock(
        shop: Farm, database_url: str) -> None:
    """Regression: a job report once held its transaction's connection while reading the order
    through a second one, so as many orders as the host's pool has connections, handling job
    events at once, each waited for a connection none would give back. Here six orders report
    at once on a host core with two connections, without Ray."""
    orders = [await started(shop, [("BENCHY-PLA-RED", 1)]) for _ in range(6)]
    printing: list[JobStatusReport] = []
    for order in orders:
        [job] = await jobs(order)
        printing.append(JobStatusReport(
            tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=job["id"],
            status="PRINTING", queue_item_id=job["farm_queue_item_id"]))
    completed = [r.model_copy(update={"status": "COMPLETED"}) for r in printing]
    host = LocalEntities(database_url, pool_size=2)
    try:
        for wave in (printing, completed):
            answers = await asyncio.wait_for(asyncio.gather(*(host.call(r) for r in wave)),
                                             timeout=60)
            assert answers == ["applied"] * len(wave)
    finally:
        await host.close()
    for order in orders:
        assert (await order_row(order))["status"] == "READY_FOR_FULFILLMENT"
