"""asyncpg pools with JSON codecs, shared by the HTTP app, entity hosts and the dispatcher."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

Pool = asyncpg.Pool
Connection = asyncpg.Connection


async def _init_connection(conn: Connection) -> None:
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


async def connect(dsn: str) -> Connection:
    conn: Connection = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


def record_to_dict(record: Any) -> dict[str, Any]:
    return dict(record.items())
