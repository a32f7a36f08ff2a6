"""Dispatch with stock jobs waiting: a stock job never takes a printer an order job fits, even
an older stock job of higher priority; it takes a printer no order job fits."""

from __future__ import annotations

import uuid

import pytest

from forma3d.db.pool import Pool
from forma3d.store import files, print_jobs, printers
from forma3d.store.printers import NewPrinter

pytestmark = pytest.mark.db


async def job(pool: Pool, tenant_id: uuid.UUID, file_id: uuid.UUID, *, stock: bool,
              tags: list[str], priority: int = 0, age: int = 0) -> uuid.UUID:
    job_id = order_id = line_id = None
    job_id = uuid.uuid4()
    async with pool.acquire() as conn:
        if not stock:
            order_id, line_id = uuid.uuid4(), uuid.uuid4()
            await conn.execute("INSERT INTO orders (id, tenant_id, shopify_order_id, name)"
                               " VALUES ($1, $2, $3, '#1')", order_id, tenant_id,
                               uuid.uuid4().int % 2**40)
            await conn.execute("INSERT INTO line_items (id, tenant_id, order_id,"
                               " shopify_line_item_id, quantity) VALUES ($1, $2, $3, 1, 1)",
                               line_id, tenant_id, order_id)
        await conn.execute(
            """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, order_id, line_item_id,
                   copy_number, file_id, status, required_tags, priority, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, 1, $7, 'QUEUED', $8, $9,
                       now() - make_interval(mins => $10))""",
            job_id, tenant_id, f"t:{job_id}", "STOCK" if stock else "ORDER", order_id, line_id,
            file_id, tags, priority, age)
    return job_id


async def test_order_jobs_before_stock_jobs_on_every_printer_they_fit(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    stored = await files.add_print_file(db_pool, tenant_id, "p.gcode", uuid.uuid4().hex.encode())
    old_urgent_stock = await job(db_pool, tenant_id, stored.id, stock=True, tags=[],
                                 priority=100, age=600)
    red_order = await job(db_pool, tenant_id, stored.id, stock=False, tags=["red"])
    any_order = await job(db_pool, tenant_id, stored.id, stock=False, tags=[])
    red = await printers.create(db_pool, tenant_id, NewPrinter("red", tags=["red"]))
    plain = await printers.create(db_pool, tenant_id, NewPrinter("plain"))
    other = await printers.create(db_pool, tenant_id, NewPrinter("other"))

    taken = await print_jobs.claim(db_pool, tenant_id, red)
    assert taken is not None and taken["id"] == red_order
    taken = await print_jobs.claim(db_pool, tenant_id, plain)
    assert taken is not None and taken["id"] == any_order
    # Only now, with no order job this printer fits, does the stock job go.
    taken = await print_jobs.claim(db_pool, tenant_id, other)
    assert taken is not None and taken["id"] == old_urgent_stock


async def test_a_stock_job_takes_a_printer_no_waiting_order_job_fits(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    stored = await files.add_print_file(db_pool, tenant_id, "p.gcode", uuid.uuid4().hex.encode())
    await job(db_pool, tenant_id, stored.id, stock=False, tags=["petg"])
    stock_job = await job(db_pool, tenant_id, stored.id, stock=True, tags=[])
    plain = await printers.create(db_pool, tenant_id, NewPrinter("plain"))
    taken = await print_jobs.claim(db_pool, tenant_id, plain)
    assert taken is not None and taken["id"] == stock_job
