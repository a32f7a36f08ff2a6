"""Handlers run without Ray: a state object, a typed message and a connection in a transaction,
against real PostgreSQL (`stub_services` records what they tell other entities)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from forma3d.db.pool import Connection, Pool
from forma3d.handlers.services import Services
from forma3d.handlers.testing import stub_services

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
    file_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
        " VALUES ($1, $2, 'p.gcode', $3, 2, 'G1')", file_id, tenant_id, uuid.uuid4().hex)
    return file_id
