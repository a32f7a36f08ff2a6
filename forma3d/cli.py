"""The `forma3d` command: up, migrate, tenant and API-key administration.

Errors are one line naming the problem, exit status 2; never a stack trace.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from forma3d.config import ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], int]


class CliError(RuntimeError):
    pass


def _with_database(settings: Settings, work: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `work(database_url)` against the configured or embedded PostgreSQL."""
    from forma3d.db.migrate import migrate
    from forma3d.platform.embedded import start_services

    services = start_services(settings.database_url, settings.redis_url or "unused",
                              settings.data_dir)
    try:
        async def run() -> Any:
            await migrate(services.database_url)
            return await work(services.database_url)
        return asyncio.run(run())
    finally:
        services.stop()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.db.migrate import migrate
    from forma3d.platform.embedded import start_services

    services = start_services(settings.database_url, "unused", settings.data_dir)
    try:
        applied = asyncio.run(migrate(services.database_url))
    finally:
        services.stop()
    print(f"applied {len(applied)} migration(s): {applied}" if applied else "schema is up to date")
    return 0


async def _tenant_id(db: Any, ref: str) -> Any:
    from forma3d.platform.tenants import find_tenant

    tenant = await find_tenant(db, ref)
    if tenant is None:
        raise CliError(f"no tenant {ref!r} (give its slug or id)")
    return tenant["id"]


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.db.pool import connect
    from forma3d.platform.tenants import create_tenant

    async def work(url: str) -> Any:
        conn = await connect(url)
        try:
            return await create_tenant(conn, args.slug, args.name)
        finally:
            await conn.close()

    print(_with_database(settings, work))
    return 0


def cmd_apikey_create(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.db.pool import connect
    from forma3d.platform.apikeys import create_api_key

    async def work(url: str) -> Any:
        conn = await connect(url)
        try:
            return await create_api_key(conn, await _tenant_id(conn, args.tenant), args.name)
        finally:
            await conn.close()

    created = _with_database(settings, work)
    print(created.key)
    print(f"(key {created.id} for tenant {created.tenant_id}; it is shown only once)",
          file=sys.stderr)
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d import logs
    from forma3d.stack import run_until_interrupted, start_stack

    logs.configure(settings.log_level)
    stack = start_stack(settings, dashboard=not args.no_dashboard)
    for name, url in stack.urls.items():
        print(f"{name:>14}: {url}", flush=True)
    print("forma3d is up; press Ctrl-C to stop", flush=True)
    run_until_interrupted(stack)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="forma3d", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole stack and run until Ctrl-C")
    up.add_argument("--no-dashboard", action="store_true", help="do not start the Ray dashboard")
    up.set_defaults(run=cmd_up)

    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(
        run=cmd_migrate)

    tenant = sub.add_parser("tenant", help="manage tenants").add_subparsers(
        dest="action", required=True)
    create = tenant.add_parser("create", help="create a tenant")
    create.add_argument("slug")
    create.add_argument("--name")
    create.set_defaults(run=cmd_tenant_create)

    apikey = sub.add_parser("apikey", help="manage API keys").add_subparsers(
        dest="action", required=True)
    key = apikey.add_parser("create", help="create an API key (printed once)")
    key.add_argument("--tenant", default="default", help="tenant slug or id")
    key.add_argument("--name", default="cli")
    key.set_defaults(run=cmd_apikey_create)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        run: Command = args.run
        return run(args, settings)
    except (ConfigError, CliError, ValueError) as error:
        print(f"forma3d: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
