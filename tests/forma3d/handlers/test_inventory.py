"""Stock through the handlers, without Ray, against PostgreSQL and the in-process simulators:
reservation when an order expands (and the race for the last units), release and return when
it is cancelled, consumption when it ships, operator adjustments, batches completing from
their jobs, retries, and the replenishment tick in and out of quiet hours."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from shop_orders import new_order, started

from forma3d.db.pool import Pool
from forma3d.handlers import order as orders
from forma3d.handlers import stock as handlers
from forma3d.handlers.order import Order
from forma3d.handlers.testing import stub_services
from forma3d.messaging.order import CancelOrder, JobStatusReport, ShipOrder, StartOrder
from forma3d.messaging.refusals import Conflict, Invalid, NotFound
from forma3d.messaging.stock import (
    AdjustStock,
    CancelStockBatch,
    CreateStockBatch,
    ReplenishStock,
    ScrapStock,
    StockItemPatch,
    StockJobReport,
    StockSettingsPatch,
    SubmitStockJobs,
    UpdateStockItem,
    UpdateStockSettings,
)
from forma3d.store import print_jobs, stock, stock_batches
from sandbox.server import serve_sandboxes
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config

pytestmark = pytest.mark.db
BENCHY, VASE = "BENCHY-PLA-RED", "VASE-SPIRAL-PLA-WHITE"  # one part; two parts per unit
NIGHT = datetime(2026, 1, 5, 23, tzinfo=UTC)
NOON = datetime(2026, 1, 5, 12, tzinfo=UTC)


class Tenant:
    def __init__(self, pool: Pool, tenant_id: uuid.UUID) -> None:
        self.services, _ = stub_services(pool)
        self.tenant_id = tenant_id

    async def do(self, fn: Any, message: Any) -> Any:
        async with self.services.pool.acquire() as conn, conn.transaction():
            return await fn(self, message, conn)


@pytest.fixture
async def shop(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    config = sandbox_config(auto_print=False)
    config.sendcloud.status_interval = 10**7
    running = await serve_sandboxes(config)
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config)
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


@pytest.fixture
async def tenant(shop: Farm) -> Tenant:
    state = Tenant(shop.pool, shop.tenant_id)
    await state.do(handlers.update_settings, UpdateStockSettings(
        tenant_id=shop.tenant_id, patch=StockSettingsPatch(stock_management_enabled=True)))
    return state


async def mapping_of(shop: Farm, sku: str) -> uuid.UUID:
    found: uuid.UUID = await shop.pool.fetchval(
        "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2", shop.tenant_id, sku)
    return found


async def put(tenant: Tenant, mapping_id: uuid.UUID, units: int) -> dict[str, Any]:
    level: dict[str, Any] = await tenant.do(handlers.adjust, AdjustStock(
        tenant_id=tenant.tenant_id, mapping_id=mapping_id, quantity=units, reason="counted"))
    return level


async def level(shop: Farm, mapping_id: uuid.UUID) -> tuple[int, int, int]:
    row = await stock.level(shop.pool, shop.tenant_id, mapping_id)
    assert row is not None
    return row["on_hand"], row["reserved"], row["available"]


async def ledger(shop: Farm, order: Order | None = None) -> list[tuple[str, int]]:
    rows = await shop.pool.fetch(
        "SELECT entry_type, quantity FROM stock_ledger WHERE tenant_id = $1"
        " AND ($2::uuid IS NULL OR order_id = $2) ORDER BY id", shop.tenant_id,
        order.order_id if order else None)
    return [(r["entry_type"], r["quantity"]) for r in rows]


async def order_jobs(order: Order) -> list[dict[str, Any]]:
    return [dict(r) for r in await order.pool.fetch(
        "SELECT * FROM print_jobs WHERE order_id = $1 ORDER BY job_key", order.order_id)]


async def statuses(order: Order) -> tuple[str, list[str]]:
    status = await order.pool.fetchval("SELECT status FROM orders WHERE id = $1", order.order_id)
    items = [r["status"] for r in await order.pool.fetch(
        "SELECT status FROM line_items WHERE order_id = $1 ORDER BY shopify_line_item_id",
        order.order_id)]
    return status, items


# --- hybrid fulfilment ----------------------------------------------------------------------


async def test_an_order_takes_stock_first_and_prints_the_rest(shop: Farm,
                                                              tenant: Tenant) -> None:
    vase = await mapping_of(shop, VASE)
    await put(tenant, vase, 2)
    order = await started(shop, [(VASE, 5)])
    assert len(await order_jobs(order)) == 3 * 2  # 3 units printed, two parts each
    assert await level(shop, vase) == (2, 2, 0)
    assert await ledger(shop, order) == [("RESERVED", 2)]
    assert await statuses(order) == ("PROCESSING", ["PRINTING"])
    # A redelivered start reserves nothing more and creates no job.
    await orders.start(order, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    assert await ledger(shop, order) == [("RESERVED", 2)]
    assert len(await order_jobs(order)) == 6


async def test_in_simplyprint_queue_mode_an_order_prints_before_stock_queued_earlier(
        shop: Farm, tenant: Tenant) -> None:
    """SimplyPrint's queue (this fixture's dispatch mode) gives a printer the first item it
    fits: the order's items are moved in front of the stock batch queued before them."""
    batch_id = await tenant.do(handlers.create_batch, CreateStockBatch(
        tenant_id=shop.tenant_id, mapping_id=await mapping_of(shop, BENCHY), units=8))
    assert await handlers.submit(tenant, SubmitStockJobs(tenant_id=shop.tenant_id)) == 8
    stock_items = [j["farm_queue_item_id"]
                   for j in await stock_batches.jobs(shop.pool, shop.tenant_id, batch_id)]
    farm = shop.sandboxes.sandboxes.simplyprint.farm
    assert [i.id for i in farm.open_items()] == stock_items
    order = await started(shop, [(BENCHY, 1), (VASE, 1)])
    order_items = [j["farm_queue_item_id"] for j in await order_jobs(order)]
    assert len(order_items) == 3 and None not in order_items
    assert [i.id for i in farm.open_items()] == order_items + stock_items
    # A redelivered start moves nothing more.
    await orders.start(order, StartOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    assert [i.id for i in farm.open_items()] == order_items + stock_items
    # Six printers, each fitting every item, take the first items: every order job, then stock.
    farm.auto_print = True
    farm.dispatch()
    started_items = {job.queue_item_id for job in farm.jobs.values()}
    assert started_items == {*order_items, *stock_items[:3]}
    assert [i.id for i in farm.open_items()] == stock_items[3:]


async def test_an_order_served_from_stock_ships_without_printing(shop: Farm,
                                                                 tenant: Tenant) -> None:
    benchy = await mapping_of(shop, BENCHY)
    await put(tenant, benchy, 3)
    order = await started(shop, [(BENCHY, 2)])
    assert await order_jobs(order) == []
    assert await statuses(order) == ("READY_FOR_FULFILLMENT", ["FROM_STOCK"])
    assert await shop.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND message_type = 'order.ship'",
        shop.tenant_id) == 1
    ship = ShipOrder(tenant_id=order.tenant_id, order_id=order.order_id)
    assert await orders.ship(order, ship) == "fulfilled"
    assert (await statuses(order))[0] == "FULFILLED"
    assert await ledger(shop, order) == [("RESERVED", 2), ("CONSUMED", 2)]
    assert await level(shop, benchy) == (1, 0, 1)


async def test_without_stock_management_nothing_is_reserved(shop: Farm,
                                                            tenant: Tenant) -> None:
    benchy = await mapping_of(shop, BENCHY)
    await put(tenant, benchy, 3)
    await tenant.do(handlers.update_settings, UpdateStockSettings(
        tenant_id=shop.tenant_id, patch=StockSettingsPatch(stock_management_enabled=False)))
    order = await started(shop, [(BENCHY, 2)])
    assert len(await order_jobs(order)) == 2
    assert await level(shop, benchy) == (3, 0, 3)


async def test_a_cancelled_order_returns_its_reservation_and_its_printed_parts(
        shop: Farm, tenant: Tenant) -> None:
    benchy = await mapping_of(shop, BENCHY)
    await put(tenant, benchy, 1)
    order = await started(shop, [(BENCHY, 3)])
    first = (await order_jobs(order))[0]
    async with shop.pool.acquire() as conn, conn.transaction():
        assert await orders.job_status(order, JobStatusReport(
            tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=first["id"],
            status="COMPLETED", queue_item_id=first["farm_queue_item_id"]), conn) == "applied"
    cancel = CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id, reason="test")
    assert await orders.cancel(order, cancel) == "cancelled"
    assert await orders.cancel(order, cancel) == "already cancelled"
    assert await ledger(shop, order) == [("RESERVED", 1), ("RELEASED", 1), ("RETURNED", 1)]
    assert await level(shop, benchy) == (2, 0, 2)


async def test_printed_parts_of_a_cancelled_order_can_go_to_scrap(shop: Farm,
                                                                  tenant: Tenant) -> None:
    await tenant.do(handlers.update_settings, UpdateStockSettings(
        tenant_id=shop.tenant_id, patch=StockSettingsPatch(stock_cancelled_parts="SCRAP")))
    benchy = await mapping_of(shop, BENCHY)
    order = await started(shop, [(BENCHY, 1)])
    (job,) = await order_jobs(order)
    async with shop.pool.acquire() as conn, conn.transaction():
        await print_jobs.set_job_status(conn, job, print_jobs.PrintJobStatus.COMPLETED)
    await orders.cancel(order, CancelOrder(tenant_id=order.tenant_id, order_id=order.order_id))
    assert await ledger(shop, order) == [("RETURNED", 1), ("SCRAPPED", 1)]
    assert await level(shop, benchy) == (0, 0, 0)


async def test_orders_racing_for_the_last_units_each_get_a_different_one(
        shop: Farm, tenant: Tenant) -> None:
    """Twelve orders of one unit each expand at once, in their own transactions, for three
    units on the shelf: exactly three are served from stock, nine print."""
    benchy = await mapping_of(shop, BENCHY)
    await put(tenant, benchy, 3)
    racers = [await new_order(shop, [(BENCHY, 1)]) for _ in range(12)]

    async def expand(order: Order) -> int:
        async with shop.pool.acquire() as conn, conn.transaction():
            return await orders.expand(conn, order.tenant_id, order.order_id)

    created = await asyncio.gather(*(expand(o) for o in racers))
    assert sorted(created) == [0] * 3 + [1] * 9
    assert await level(shop, benchy) == (3, 3, 0)
    reserved = await shop.pool.fetch(
        "SELECT line_item_id, sum(quantity) AS n FROM stock_ledger WHERE tenant_id = $1"
        " AND entry_type = 'RESERVED' GROUP BY line_item_id", shop.tenant_id)
    assert len(reserved) == 3 and all(r["n"] == 1 for r in reserved)
    from_stock = {r["id"] for r in await shop.pool.fetch(
        "SELECT id FROM line_items WHERE tenant_id = $1 AND status = 'FROM_STOCK'",
        shop.tenant_id)}
    assert from_stock == {r["line_item_id"] for r in reserved}
    printed = {r["line_item_id"] for r in await shop.pool.fetch(
        "SELECT line_item_id FROM print_jobs WHERE tenant_id = $1", shop.tenant_id)}
    assert not printed & from_stock


# --- operator commands ----------------------------------------------------------------------


async def test_adjustments_and_scrap_refuse_what_the_shelf_cannot_give(
        shop: Farm, tenant: Tenant) -> None:
    benchy = await mapping_of(shop, BENCHY)
    assert (await put(tenant, benchy, 4))["available"] == 4
    await started(shop, [(BENCHY, 3)])
    with pytest.raises(Conflict, match="1 available"):
        await tenant.do(handlers.scrap, ScrapStock(
            tenant_id=shop.tenant_id, mapping_id=benchy, quantity=2, reason="warped"))
    done = await tenant.do(handlers.scrap, ScrapStock(
        tenant_id=shop.tenant_id, mapping_id=benchy, quantity=1, reason="warped"))
    assert (done["on_hand"], done["reserved"], done["available"]) == (3, 3, 0)
    with pytest.raises(NotFound):
        await put(tenant, uuid.uuid4(), 1)
    with pytest.raises(ValueError, match="at least one unit"):
        AdjustStock(tenant_id=shop.tenant_id, mapping_id=benchy, quantity=0, reason="x")
    with pytest.raises(ValueError, match="at least 1 character"):
        ScrapStock(tenant_id=shop.tenant_id, mapping_id=benchy, quantity=1, reason=" ")


async def test_settings_are_validated(shop: Farm, tenant: Tenant) -> None:
    benchy = await mapping_of(shop, BENCHY)
    row = await tenant.do(handlers.update_item, UpdateStockItem(
        tenant_id=shop.tenant_id, mapping_id=benchy, patch=StockItemPatch(minimum=2, maximum=5)))
    assert (row["minimum"], row["maximum"]) == (2, 5)
    with pytest.raises(Invalid, match="maximum"):
        await tenant.do(handlers.update_item, UpdateStockItem(
            tenant_id=shop.tenant_id, mapping_id=benchy, patch=StockItemPatch(maximum=1)))
    with pytest.raises(Invalid, match="time zone"):
        await tenant.do(handlers.update_settings, UpdateStockSettings(
            tenant_id=shop.tenant_id, patch=StockSettingsPatch(stock_time_zone="Mars/Olympus")))


# --- batches and replenishment --------------------------------------------------------------


async def _print(pool: Pool, tenant: Tenant, job: dict[str, Any], status: str) -> str:
    """What the printer entity does with a stock job: write it, then tell the tenant."""
    async with pool.acquire() as conn, conn.transaction():
        await print_jobs.set_job_status(conn, job, print_jobs.PrintJobStatus(status))
    result: str = await tenant.do(handlers.job_report, StockJobReport(
        tenant_id=tenant.tenant_id, print_job_id=job["id"]))
    return result


async def test_a_batch_adds_its_units_when_its_last_job_is_done(shop: Farm,
                                                                tenant: Tenant) -> None:
    vase = await mapping_of(shop, VASE)
    batch_id = await tenant.do(handlers.create_batch, CreateStockBatch(
        tenant_id=shop.tenant_id, mapping_id=vase, units=2))
    jobs = await stock_batches.jobs(shop.pool, shop.tenant_id, batch_id)
    assert len(jobs) == 4
    assert await _print(shop.pool, tenant, jobs[0], "FAILED") == "requeued"
    again = await stock_batches.jobs(shop.pool, shop.tenant_id, batch_id)
    assert (again[0]["status"], again[0]["attempts"]) == ("QUEUED", 1)
    for job in again[:-1]:
        assert await _print(shop.pool, tenant, job, "COMPLETED") == "IN_PROGRESS"
    assert await level(shop, vase) == (0, 0, 0)
    assert await _print(shop.pool, tenant, again[-1], "COMPLETED") == "COMPLETED"
    assert await level(shop, vase) == (2, 0, 2)
    # A redelivered report changes nothing more.
    assert await tenant.do(handlers.job_report, StockJobReport(
        tenant_id=shop.tenant_id, print_job_id=again[-1]["id"])) == "COMPLETED"
    assert await ledger(shop) == [("PRODUCED", 2)]
    with pytest.raises(Conflict, match="COMPLETED"):
        await tenant.do(handlers.cancel_batch, CancelStockBatch(
            tenant_id=shop.tenant_id, stock_batch_id=batch_id))


async def test_replenishment_batches_products_below_minimum_only_in_quiet_hours(
        shop: Farm, tenant: Tenant) -> None:
    benchy, vase = await mapping_of(shop, BENCHY), await mapping_of(shop, VASE)
    await put(tenant, benchy, 1)
    for mapping_id, patch in ((benchy, StockItemPatch(minimum=3, maximum=6, batch_size=4)),
                              (vase, StockItemPatch(minimum=1, priority=9, batch_size=2))):
        await tenant.do(handlers.update_item, UpdateStockItem(
            tenant_id=shop.tenant_id, mapping_id=mapping_id, patch=patch))
    tick = ReplenishStock(tenant_id=shop.tenant_id, at=NOON)
    assert await tenant.do(handlers.replenish, tick) == 0
    night = ReplenishStock(tenant_id=shop.tenant_id, at=NIGHT)
    assert await tenant.do(handlers.replenish, night) == 3
    assert await tenant.do(handlers.replenish, night) == 0  # a repeated tick: no second batch
    batches = await shop.pool.fetch(  # in the order they were made
        """SELECT b.mapping_id, b.units, b.origin FROM event_log e
           JOIN stock_batches b ON b.id = (e.data ->> 'stock_batch_id')::uuid
           WHERE e.tenant_id = $1 AND e.type = 'stock.batch-status-changed' ORDER BY e.id""",
        shop.tenant_id)
    assert [(b["mapping_id"], b["units"]) for b in batches] == [(vase, 1), (benchy, 4),
                                                                (benchy, 1)]
    assert {b["origin"] for b in batches} == {"REPLENISHMENT"}
    events = await shop.pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1"
        " AND type = 'stock.replenishment-scheduled'", shop.tenant_id)
    assert events == 1 * 2 + 5  # vase: two parts; benchy: five units of one part


async def test_cancelling_a_batch_stops_the_printer_running_one_of_its_jobs(
        shop: Farm, tenant: Tenant) -> None:
    benchy = await mapping_of(shop, BENCHY)
    batch_id = await tenant.do(handlers.create_batch, CreateStockBatch(
        tenant_id=shop.tenant_id, mapping_id=benchy, units=2))
    running, _queued = await stock_batches.jobs(shop.pool, shop.tenant_id, batch_id)
    printer_id = uuid.uuid4()
    await shop.pool.execute("INSERT INTO printers (id, tenant_id, name) VALUES ($1, $2, 'MK4')",
                            printer_id, shop.tenant_id)
    async with shop.pool.acquire() as conn, conn.transaction():
        await print_jobs.set_job_status(conn, running, print_jobs.PrintJobStatus.PRINTING,
                                        printer_id=printer_id)
    assert await tenant.do(handlers.cancel_batch, CancelStockBatch(
        tenant_id=shop.tenant_id, stock_batch_id=batch_id, reason="overstocked")) == "CANCELLED"
    stops = await shop.pool.fetch(
        "SELECT target_key, payload FROM outbox WHERE tenant_id = $1"
        " AND message_type = 'printer.control'", shop.tenant_id)
    assert [(r["target_key"], r["payload"]["action"]) for r in stops] == [
        (str(printer_id), "cancel")]
    assert {j["status"] for j in await stock_batches.jobs(shop.pool, shop.tenant_id,
                                                          batch_id)} == {"CANCELLED"}
    assert await level(shop, benchy) == (0, 0, 0)
