"""A property test on real PostgreSQL: random interleavings of orders (expanded by the order
entity's `expand`), cancellations, shipments, operator adjustments and scrap, completed prints
and completed stock batches. Whatever the order, available stock never goes below zero, the
ledger adds up to the levels, every reserved unit is either still reserved, shipped or back on
the shelf, and no unit of a line item is both taken from stock and printed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forma3d.db.pool import Pool, create_pool
from forma3d.domain.inventory.ledger import LedgerEntry, total
from forma3d.domain.inventory.states import Direction, LedgerType, ReferenceType
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.handlers import order as orders
from forma3d.handlers import stock as handlers
from forma3d.handlers.testing import stub_services
from forma3d.messaging.order import CancelOrder
from forma3d.messaging.refusals import Conflict
from forma3d.messaging.stock import AdjustStock, CreateStockBatch, ScrapStock, StockJobReport
from forma3d.store import orders as store
from forma3d.store import print_jobs, stock, stock_batches
from forma3d.store.tenants import create_tenant
from tests.forma3d.store.stock_fixtures import product

pytestmark = pytest.mark.db

OPS = st.one_of(
    st.tuples(st.just("order"), st.integers(1, 4)),
    st.tuples(st.just("cancel"), st.integers(0, 9)),
    st.tuples(st.just("ship"), st.integers(0, 9)),
    st.tuples(st.just("print"), st.integers(0, 9)),
    st.tuples(st.just("adjust"), st.integers(-3, 5).filter(bool)),
    st.tuples(st.just("scrap"), st.integers(1, 3)),
    st.tuples(st.just("batch"), st.integers(1, 3)),
)


@dataclass
class World:
    pool: Pool
    tenant_id: uuid.UUID
    mapping_id: uuid.UUID
    services: Any = None
    orders: list[tuple[uuid.UUID, str]] = field(default_factory=list)  # (order, open/...)

    async def tenant_do(self, fn: Any, message: Any) -> Any:
        async with self.pool.acquire() as conn, conn.transaction():
            return await fn(self, message, conn)


async def _order(world: World, quantity: int) -> None:
    number = len(world.orders) + 1
    shopify = ShopifyOrder.model_validate({"id": 10_000 + number, "name": f"#{number}",
                                           "line_items": [{"id": number, "sku": "CUBE",
                                                           "quantity": quantity}]})
    async with world.pool.acquire() as conn, conn.transaction():
        order_id, _ = await store.insert_order(conn, world.tenant_id, shopify)
        await orders.expand(conn, world.tenant_id, order_id)
    world.orders.append((order_id, "open"))


async def _apply(world: World, op: str, arg: int) -> None:
    t = world.tenant_id
    open_orders = [i for i, (_, state) in enumerate(world.orders) if state == "open"]
    pick = open_orders[arg % len(open_orders)] if open_orders else None
    if op == "order":
        await _order(world, arg)
    elif op == "cancel" and pick is not None:
        order_id = world.orders[pick][0]
        order = await orders.load(world.services, str(order_id))
        await orders.cancel(order, CancelOrder(tenant_id=t, order_id=order_id))
        world.orders[pick] = (order_id, "cancelled")
    elif op == "ship" and pick is not None:  # what the ship step does to stock
        order_id = world.orders[pick][0]
        async with world.pool.acquire() as conn, conn.transaction():
            for item in await store.line_items(conn, t, order_id):
                await stock.consume(conn, item)
        world.orders[pick] = (order_id, "shipped")
    elif op == "print" and pick is not None:
        async with world.pool.acquire() as conn, conn.transaction():
            waiting = await print_jobs.order_jobs(conn, t, world.orders[pick][0],
                                                  PrintJobStatus.PENDING)
            if waiting:
                await print_jobs.set_job_status(conn, waiting[0], PrintJobStatus.QUEUED)
                await print_jobs.set_job_status(conn, waiting[0], PrintJobStatus.COMPLETED)
    elif op in ("adjust", "scrap"):
        message: Any = (AdjustStock if op == "adjust" else ScrapStock)(
            tenant_id=t, mapping_id=world.mapping_id, quantity=arg, reason="property")
        with contextlib.suppress(Conflict):  # more than is available: refused, nothing written
            await world.tenant_do(handlers.adjust if op == "adjust" else handlers.scrap, message)
    elif op == "batch":
        batch_id = await world.tenant_do(handlers.create_batch, CreateStockBatch(
            tenant_id=t, mapping_id=world.mapping_id, units=arg))
        for job in await stock_batches.jobs(world.pool, t, batch_id):
            async with world.pool.acquire() as conn, conn.transaction():
                await print_jobs.set_job_status(conn, job, PrintJobStatus.COMPLETED)
            await world.tenant_do(handlers.job_report, StockJobReport(
                tenant_id=t, print_job_id=job["id"]))


async def _check(world: World) -> None:
    t = world.tenant_id
    level = await stock.level(world.pool, t, world.mapping_id)
    if level is None:
        return
    assert level["available"] >= 0 and level["reserved"] >= 0
    entries = [LedgerEntry(LedgerType(r["entry_type"]), Direction(r["direction"]),
                           r["quantity"], ReferenceType(r["reference_type"]), reason="x")
               for r in await world.pool.fetch(
                   "SELECT * FROM stock_ledger WHERE tenant_id = $1 ORDER BY id", t)]
    summed = total(entries)
    assert (summed.on_hand, summed.reserved) == (level["on_hand"], level["reserved"])
    outstanding = 0
    for order_id, state in world.orders:
        for item in await store.line_items(world.pool, t, order_id):
            reserved = await stock.ever_reserved(world.pool, t, item["id"])
            jobs = await world.pool.fetchval(
                "SELECT count(*) FROM print_jobs WHERE line_item_id = $1", item["id"])
            assert reserved + jobs == item["quantity"]  # each unit from stock xor printed
            left = sum((await stock.outstanding(world.pool, t, item["id"])).values())
            assert left == (reserved if state == "open" else 0)
            outstanding += left
    assert outstanding == level["reserved"]


@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=20))
def test_stock_stays_consistent_under_any_interleaving(database_url: str, db_pool: Pool,
                                                       ops: list[tuple[str, int]]) -> None:
    async def run() -> None:
        pool = await create_pool(database_url, min_size=1, max_size=3)
        try:
            tenant_id = await create_tenant(pool, f"p-{uuid.uuid4().hex[:12]}", settings={
                "stock_management_enabled": True})
            world = World(pool, tenant_id, await product(pool, tenant_id, "CUBE"))
            world.services, _ = stub_services(pool)
            for op, arg in ops:
                await _apply(world, op, arg)
                await _check(world)
        finally:
            await pool.close()

    asyncio.run(run())
