"""Migrations: concurrent starters apply each migration exactly once."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

from forma3d.db.migrations import MigrationError, available, migrate
from forma3d.db.pool import Pool, connect


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture
async def fresh_database(database_url: str, db_pool: Pool):  # type: ignore[no-untyped-def]
    name = f"f3d_mig_{uuid.uuid4().hex[:10]}"
    await db_pool.execute(f"CREATE DATABASE {name}")
    yield with_database(database_url, name)
    await db_pool.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def run_cli(url: str) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "redis://unused:1/0"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "forma3d.cli", "migrate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_two_concurrent_cli_migrations(fresh_database: str) -> None:
    results = await asyncio.gather(run_cli(fresh_database), run_cli(fresh_database))
    assert [code for code, _ in results] == [0, 0], results
    outputs = sorted(out.strip().splitlines()[-1] for _, out in results)
    expected = [m.version for m in available()]
    assert outputs == sorted([f"applied {len(expected)} migration(s): {expected}",
                              "schema is up to date"])
    conn = await connect(fresh_database)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == expected
        assert await conn.fetchval("SELECT count(*) FROM tenants WHERE slug = 'default'") == 1
    finally:
        await conn.close()


async def test_many_concurrent_in_process_migrations(fresh_database: str) -> None:
    applied = await asyncio.gather(*(migrate(fresh_database) for _ in range(6)))
    non_empty = [a for a in applied if a]
    assert len(non_empty) == 1 and non_empty[0] == [m.version for m in available()]


async def test_edited_migration_is_refused(fresh_database: str) -> None:
    await migrate(fresh_database)
    conn = await connect(fresh_database)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrate(fresh_database)
