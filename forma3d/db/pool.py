"""asyncpg pools with JSON codecs, shared by the HTTP app, entity hosts and the dispatcher."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Pool = asyncpg.Pool
# A plain connection or one borrowed from a pool: every query helper takes either.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy  # type: ignore[type-arg]


async def _init_connection(conn: asyncpg.Connection) -> None:  # type: ignore[type-arg]
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:  # type: ignore[type-arg]
    conn: asyncpg.Connection = await asyncpg.connect(dsn)  # type: ignore[type-arg]
    await _init_connection(conn)
    return conn


def record_to_dict(record: Any) -> dict[str, Any]:
    return dict(record.items())


@contextlib.asynccontextmanager
async def connection(db: Pool | Connection) -> AsyncIterator[Connection]:
    """The caller's connection, or one borrowed from the pool for the block."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


@contextlib.asynccontextmanager
async def transaction(db: Pool | Connection) -> AsyncIterator[Connection]:
    """A transaction (a savepoint inside the caller's) on the caller's connection or a borrowed
    one: for store functions whose writes must land together whoever calls them."""
    async with connection(db) as conn, conn.transaction():
        yield conn
