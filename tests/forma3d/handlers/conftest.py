"""Handlers run without Ray: a state object, a typed message and a connection in a transaction,
against real PostgreSQL (`stub_services` records what they tell other entities), and a tenant
connected to an in-process SimplyPrint simulator (real HTTP on loopback), set up the way the
end-to-end tests set up theirs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from simplyprint_tenant import FARM, QueueJob, SimplyPrint

from forma3d.db.pool import Connection, Pool
from forma3d.handlers.services import Services
from forma3d.handlers.testing import stub_services
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.store import files
from forma3d.store.integrations import load_integration, save_integration
from sandbox.server import serve_sandboxes
from sandbox.tenant import fake_gcode, save_credentials
from tests.e2e.conftest import sandbox_config

NOWHERE = "http://127.0.0.1:9"  # webhooks are switched off: the tests deliver farm events


@pytest.fixture
async def simplyprint(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[SimplyPrint]:
    """Two printers in smart dispatch; the clock runs at real speed, so prints last."""
    config = sandbox_config()
    config.speedup = 1.0
    config.simplyprint.printers = FARM
    config.simplyprint.loss_rate = 1.0
    running = await serve_sandboxes(config)
    await save_credentials(db_pool, tenant_id, running.urls, config)
    sp = await load_integration(db_pool, tenant_id, SimplyPrintSettings)
    assert sp is not None
    await save_integration(db_pool, tenant_id, sp.model_copy(update={"dispatch_mode": "smart"}))
    stored = await files.add_print_file(db_pool, tenant_id, "part.gcode",
                                        fake_gcode("part", 60, 20), estimated_seconds=3600)
    yield SimplyPrint(tenant_id, running, stored.id)
    await running.stop()



@pytest.fixture
def queue_job(db_pool: Pool, simplyprint: SimplyPrint) -> QueueJob:
    """A QUEUED job in the smart queue: a stock job, or one part of a new order."""

    async def add(tags: list[str], *, order: bool = False) -> uuid.UUID:
        job_id, tenant_id = uuid.uuid4(), simplyprint.tenant_id
        order_id = line_id = None
        async with db_pool.acquire() as conn:
            if order:
                order_id, line_id = uuid.uuid4(), uuid.uuid4()
                await conn.execute("INSERT INTO orders (id, tenant_id, shopify_order_id, name)"
                                   " VALUES ($1, $2, $3, '#1001')", order_id, tenant_id,
                                   uuid.uuid4().int % 2**40)
                await conn.execute(
                    "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id,"
                    " quantity) VALUES ($1, $2, $3, 1, 1)", line_id, tenant_id, order_id)
            await conn.execute(
                """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, order_id,
                                           line_item_id, copy_number, file_id, status,
                                           required_tags, queued_at)
                   VALUES ($1, $2, $3, $4, $5, $6, 1, $7, 'QUEUED', $8, now())""",
                job_id, tenant_id, f"test:{job_id}", "ORDER" if order else "STOCK", order_id,
                line_id, simplyprint.file_id, tags)
        return job_id

    return add


M = TypeVar("M")


@dataclass
class TenantState:
    """The tenant state the catalog and queue handlers read (structurally a TenantScope)."""

    services: Services
    tenant_id: uuid.UUID


@pytest.fixture
def tenant(db_pool: Pool, tenant_id: uuid.UUID) -> TenantState:
    services, _ = stub_services(db_pool)
    return TenantState(services, tenant_id)


async def command(state: TenantState, fn: Callable[[Any, M, Connection], Awaitable[Any]],
                  message: M) -> Any:
    """Run a command handler as its host does: in one transaction, rolled back if it raises."""
    async with state.services.pool.acquire() as conn, conn.transaction():
        return await fn(state, message, conn)


async def outbox(pool: Pool, tenant_id: uuid.UUID) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await pool.fetch("SELECT target_kind, message_type, payload FROM outbox"
                            " WHERE tenant_id = $1 ORDER BY id", tenant_id)
    return [(r["target_kind"], r["message_type"], r["payload"]) for r in rows]


async def print_file(pool: Pool, tenant_id: uuid.UUID) -> uuid.UUID:
    stored = await files.add_print_file(pool, tenant_id, "p.gcode", uuid.uuid4().hex.encode())
    return stored.id
