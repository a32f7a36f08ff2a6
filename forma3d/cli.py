"""The `forma3d` command: up, migrate, tenant and API-key administration, sandbox and demo.

Errors are one line naming the problem, exit status 2; never a stack trace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from forma3d.config import ConfigError, Settings, load_settings
from forma3d.demo import DemoError

Command = Callable[[argparse.Namespace, Settings], int]


class CliError(RuntimeError):
    pass


def _with_database(settings: Settings, work: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `work(database_url)` against the configured or embedded PostgreSQL."""
    from forma3d.db.migrations import migrate
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
    from forma3d.db.migrations import migrate
    from forma3d.platform.embedded import start_services

    services = start_services(settings.database_url, "unused", settings.data_dir)
    try:
        applied = asyncio.run(migrate(services.database_url))
    finally:
        services.stop()
    print(f"applied {len(applied)} migration(s): {applied}" if applied else "schema is up to date")
    return 0


async def _tenant_id(db: Any, ref: str) -> Any:
    from forma3d.store.tenants import find_tenant

    tenant = await find_tenant(db, ref)
    if tenant is None:
        raise CliError(f"no tenant {ref!r} (give its slug or id)")
    return tenant["id"]


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.db.pool import connect
    from forma3d.store.tenants import create_tenant

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
    from forma3d.store.apikeys import create_api_key

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


def _in_database(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(connection)` in the configured or embedded PostgreSQL."""
    from forma3d.db.pool import connect

    async def run(url: str) -> Any:
        conn = await connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return _with_database(settings, run)


# -- integrations: the same verbs as /api/v1/integrations, through the same code, without HTTP

INTEGRATION_FLAGS: dict[str, dict[str, str]] = {
    "shopify": {"shop": "shop_domain", "token": "access_token",
                "webhook_secret": "webhook_secret", "api_version": "api_version",
                "base_url": "base_url"},
    "simplyprint": {"company_id": "company_id", "api_key": "api_key",
                    "webhook_secret": "webhook_secret", "base_url": "base_url",
                    "files_url": "files_url", "dispatch_mode": "dispatch_mode"},
    "sendcloud": {"public_key": "public_key", "secret_key": "secret_key",
                  "webhook_secret": "webhook_secret", "sender_address": "sender_address_id",
                  "shipping_method": "shipping_method_id",
                  "shipping_option": "shipping_option_code", "api_version": "api_version",
                  "base_url": "base_url"},
}


def _secret_value(value: Any) -> Any:
    """A value of "-" is read from standard input (keeps a secret out of the shell history)."""
    return sys.stdin.readline().strip() if value == "-" else value


def _integration_work(settings: Settings, tenant: str,
                      work: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    from forma3d.db.pool import create_pool

    async def run(url: str) -> Any:
        pool = await create_pool(url, max_size=2)
        try:
            return await work(pool, await _tenant_id(pool, tenant))
        finally:
            await pool.close()

    return _with_database(settings, run)


def _roles_check(role: str) -> None:
    from forma3d.domain.permissions import BUILTIN_ROLES

    if role not in BUILTIN_ROLES:
        raise CliError(f"the CLI gives built-in roles only ({', '.join(BUILTIN_ROLES)})")


def cmd_user_create(args: argparse.Namespace, settings: Settings) -> int:
    """A user with a password read from stdin (no echo on a terminal)."""
    import getpass

    from forma3d.http.auth import hash_password
    from forma3d.store.users import create_user

    _roles_check(args.role)
    password = (getpass.getpass("password: ") if sys.stdin.isatty()
                else sys.stdin.readline().rstrip("\n"))
    if len(password) < 12:
        raise CliError("the password must have at least 12 characters")

    async def work(conn: Any) -> Any:
        user = await create_user(conn, await _tenant_id(conn, args.tenant), args.email,
                                 args.name or args.email, args.role,
                                 await hash_password(password))
        if user is None:
            raise CliError(f"the tenant already has a user {args.email!r}")
        return user

    print(_in_database(settings, work).id)
    return 0


def cmd_user_invite(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.http.routes.people import INVITATION_VALID
    from forma3d.store.users import create_user, issue_token

    _roles_check(args.role)

    async def work(conn: Any) -> Any:
        async with conn.transaction():
            user = await create_user(conn, await _tenant_id(conn, args.tenant), args.email,
                                     args.name or args.email, args.role)
            if user is None:
                raise CliError(f"the tenant already has a user {args.email!r}")
            return user, await issue_token(conn, user, "invitation", INVITATION_VALID)

    user, (token, expires_at) = _in_database(settings, work)
    print(token)
    print(f"(invitation of user {user.id}, valid until {expires_at:%Y-%m-%d %H:%M} UTC: "
          "POST it with a password to /api/v1/invitations/accept; shown only once)",
          file=sys.stderr)
    return 0


def cmd_apikey_list(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.store.apikeys import list_keys

    async def work(conn: Any) -> Any:
        return await list_keys(conn, await _tenant_id(conn, args.tenant))

    for k in _in_database(settings, work):
        state = "revoked" if k.revoked_at else "live"
        scope = k.role or (",".join(k.permissions) if k.permissions is not None else "owner")
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
        print(f"{k.id}  {k.prefix}…  {state:7}  {scope:20}  used {used}  {k.name}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace, settings: Settings) -> int:
    """Revoke a key; with REDIS_URL set, every replica drops it at once (else within 30 s)."""
    import uuid

    from forma3d.store.apikeys import revoke_key
    from forma3d.store.security import record_security_event

    try:
        key_id = uuid.UUID(args.key_id)
    except ValueError:
        raise CliError(f"{args.key_id!r} is not a key id") from None

    async def work(conn: Any) -> bool:
        tenant_id = await conn.fetchval("SELECT tenant_id FROM api_keys WHERE id = $1", key_id)
        if not await revoke_key(conn, None, key_id):
            return False
        await record_security_event(conn, tenant_id, "platform", "api_key.revoked",
                                    {"key_id": str(key_id), "via": "cli"})
        if settings.redis_url:
            import redis.asyncio as aioredis

            from forma3d.http.auth import changed

            redis = aioredis.from_url(settings.redis_url)
            try:
                await changed(redis)
            finally:
                await redis.aclose()
        return True

    if not _in_database(settings, work):
        raise CliError(f"no live API key {key_id}")
    print(f"revoked {key_id}")
    return 0


def _refusal(error: Exception) -> CliError:
    from forma3d.integrations.errors import IntegrationError

    if isinstance(error, IntegrationError):
        return CliError(f"{error.service} refused: {error.message}")
    return CliError(str(error))


def cmd_integration_set(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from forma3d.handlers import connections
    from forma3d.integrations.errors import IntegrationError

    changes = {field: _secret_value(getattr(args, flag))
               for flag, field in INTEGRATION_FLAGS[args.service].items()
               if getattr(args, flag, None) is not None}

    async def work(pool: Any, tenant_id: Any) -> Any:
        try:
            merged = await connections.merged(pool, tenant_id, args.service, changes)
        except ValidationError as error:
            raise CliError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                     for e in error.errors())) from None
        try:
            return await connections.connect(pool, tenant_id, merged, settings.public_url,
                                             changed_by="cli")
        except IntegrationError as error:
            raise _refusal(error) from None

    done = _integration_work(settings, args.tenant, work)
    print(f"{args.service} connected ({done.settings.account or 'account not named'})")
    if done.registration is None:
        print("webhooks not registered: set FORMA3D_PUBLIC_URL to where the service reaches "
              "this deployment, then run this again", file=sys.stderr)
    else:
        print(f"webhooks registered at {done.registration.url}: "
              f"{', '.join(done.registration.subscriptions)}")
    return 0


def cmd_integration_show(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.store.integrations import connections

    async def work(pool: Any, tenant_id: Any) -> Any:
        return await connections(pool, tenant_id)

    rows = {row.service: row for row in _integration_work(settings, args.tenant, work)}
    shown = []
    for service in INTEGRATION_FLAGS:
        if args.service and service != args.service:
            continue
        row = rows.get(service)
        if row is None:
            shown.append({"service": service, "state": "disconnected"})
            continue
        shown.append({"service": service, "state": "failing" if row.last_error else "connected",
                      "config": row.config, "secrets": row.secrets,
                      "last_error": row.last_error, "last_ok_at": row.last_ok_at,
                      "updated_at": row.updated_at})
    print(json.dumps(shown, indent=2, default=str, ensure_ascii=False))
    return 0


def cmd_integration_test(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.handlers import connections
    from forma3d.integrations.errors import IntegrationError

    async def work(pool: Any, tenant_id: Any) -> Any:
        try:
            return await connections.test(pool, tenant_id, args.service)
        except (IntegrationError, connections.NotConnected) as error:
            raise _refusal(error) from None

    said = _integration_work(settings, args.tenant, work)
    print(f"{args.service}: {said.message}")
    return 0


def cmd_integration_remove(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d.handlers import connections

    async def work(pool: Any, tenant_id: Any) -> None:
        try:
            await connections.disconnect(pool, tenant_id, args.service, settings.public_url,
                                         changed_by="cli")
        except (connections.NotConnected, connections.WebhooksLeft) as error:
            raise CliError(str(error)) from None

    _integration_work(settings, args.tenant, work)
    print(f"{args.service} disconnected")
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d import logs
    from forma3d.stack import AlreadyRunning, run_until_interrupted, start_stack

    logs.configure(settings.log_level)
    try:
        stack = start_stack(settings, dashboard=not args.no_dashboard)
    except AlreadyRunning as error:
        raise CliError(str(error)) from None
    for note in stack.notes:
        print(f"forma3d: {note}", flush=True)
    for name, url in stack.urls.items():
        print(f"{name:>19}: {url}", flush=True)
    if stack.sandbox_note:
        print(f"{'sandbox':>19}: {stack.sandbox_note}", flush=True)
    print("forma3d is up; press Ctrl-C to stop", flush=True)
    run_until_interrupted(stack)
    # Everything it started has stopped; leave without waiting on library exit hooks (Ray's
    # and pgserver's held the process for up to a minute after the stop).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """The three simulators alone (no tenant wiring), on the ports `forma3d up` would use."""
    from sandbox.runner import SandboxThread, stack_config, write_state
    from sandbox.server import describe
    from sandbox.tenant import connect_commands

    config = stack_config(settings.http_port, speedup=args.speedup, seed=args.seed)
    config.simplyprint.failure_rate = args.failure_rate
    for service in (config.shopify, config.simplyprint, config.sendcloud):
        service.loss_rate = args.loss_rate
    sandbox = SandboxThread(config)
    urls = sandbox.start()
    state = write_state(settings.data_dir, "", urls)
    try:
        assert sandbox.running is not None
        print(describe(sandbox.running, config), flush=True)
        print("connect a tenant (with FORMA3D_PUBLIC_URL set to where the API listens, so our "
              "webhooks are registered here):", flush=True)
        for line in connect_commands(urls, config):
            print(f"  {line}", flush=True)
        print("sandbox is up; press Ctrl-C to stop", flush=True)
        _wait_for_signal()
    finally:
        state.unlink(missing_ok=True)
        sandbox.stop()
    return 0


def _shopify_url(args: argparse.Namespace, settings: Settings) -> str:
    from sandbox.runner import read_state

    if args.url:
        return str(args.url).rstrip("/")
    state = read_state(settings.data_dir)
    if state and "shopify" in state.get("urls", {}):
        return str(state["urls"]["shopify"])
    return f"http://127.0.0.1:{settings.http_port + 1}"


def _sandbox_call(url: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    try:
        response = httpx.post(url, json=body, timeout=10)
    except httpx.HTTPError as error:
        raise CliError(f"no Shopify sandbox answers at {url} ({error}); start `forma3d up` or "
                       "`forma3d sandbox`, or give --url") from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("error", response.text)
        except ValueError:
            detail = response.text
        raise CliError(f"Shopify sandbox refused ({response.status_code}): {detail}")
    answer: dict[str, Any] = response.json()
    return answer


def cmd_send_order(args: argparse.Namespace, settings: Settings) -> int:
    skus: list[str] = args.sku or []
    quantities: list[int] = args.quantity or []
    if len(quantities) > len(skus):
        raise CliError("each --quantity needs a --sku before it")
    if any(q < 1 for q in quantities):
        raise CliError("--quantity must be at least 1")
    lines = [{"sku": sku, "quantity": quantities[i] if i < len(quantities) else 1}
             for i, sku in enumerate(skus)]
    body: dict[str, Any] = {"line_items": lines}
    if args.email:
        body["email"] = args.email
    order = _sandbox_call(f"{_shopify_url(args, settings)}/_sandbox/orders", body)["order"]
    items = ", ".join(f"{li['sku']} x{li['quantity']}" for li in order["line_items"])
    print(f"{order['id']}  {order['name']}  {items}  (orders/create webhook sent)")
    return 0


def cmd_cancel_order(args: argparse.Namespace, settings: Settings) -> int:
    url = f"{_shopify_url(args, settings)}/_sandbox/orders/{args.order_id}/cancel"
    order = _sandbox_call(url, {"reason": args.reason})["order"]
    print(f"{order['id']}  {order['name']}  cancelled ({args.reason}; orders/cancelled webhook "
          "sent)")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from forma3d import logs
    from forma3d.demo import DemoOptions, run_demo, summary

    logs.configure("WARNING")
    options = DemoOptions(orders=args.orders, failure_rate=args.failure_rate,
                          timeout=args.timeout, speedup=args.speedup, api=args.api,
                          stock_ratio=args.stock_ratio, chaos=args.chaos, seed=args.seed)
    # Ray writes its own notices to stdout while a stack starts and stops in this process; they
    # go to stderr so stdout carries only the report (one JSON object with --json).
    with contextlib.redirect_stdout(sys.stderr):
        report = run_demo(options, settings, show_progress=not args.no_progress)
    print(json.dumps(report) if args.json else summary(report), flush=True)
    return 0 if report["fulfilled"] == report["orders_sent"] else 1


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
    listing = apikey.add_parser("list", help="list a tenant's API keys (never their secrets)")
    listing.add_argument("--tenant", default="default", help="tenant slug or id")
    listing.set_defaults(run=cmd_apikey_list)
    revoke = apikey.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=cmd_apikey_revoke)
    _user_parser(sub)
    _integration_parser(sub)
    _sandbox_parser(sub)
    _demo_parser(sub)
    return root


def _user_parser(sub: Any) -> None:
    user = sub.add_parser("user", help="manage a tenant's users").add_subparsers(
        dest="action", required=True)
    for name, run, text in (
            ("create", cmd_user_create, "create a user; the password is read from stdin"),
            ("invite", cmd_user_invite, "invite a user: prints the one-time token")):
        command = user.add_parser(name, help=text)
        command.add_argument("email")
        command.add_argument("--tenant", default="default", help="tenant slug or id")
        command.add_argument("--name")
        command.add_argument("--role", default="viewer")
        command.set_defaults(run=run)


def _integration_parser(sub: Any) -> None:
    integration = sub.add_parser(
        "integration", help="connect a tenant to Shopify, SimplyPrint and Sendcloud "
        "(the verbs of /api/v1/integrations)").add_subparsers(dest="action", required=True)
    secret = " (- reads it from standard input)"

    def tenant(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--tenant", default="default", help="tenant slug or id")
        return parser

    set_ = integration.add_parser("set", help="connect or change a service; registers our "
                                  "webhooks there when FORMA3D_PUBLIC_URL is set; flags left "
                                  "out keep their stored values").add_subparsers(
        dest="service", required=True)
    shop = tenant(set_.add_parser("shopify", help="a custom app's Admin API access"))
    shop.add_argument("--shop", help="shop domain, e.g. my-farm.myshopify.com")
    shop.add_argument("--token", help="Admin API access token (shpat_...)" + secret)
    shop.add_argument("--webhook-secret", help="the app's client secret" + secret)
    shop.add_argument("--api-version", help="Admin API version (default 2024-07)")
    shop.add_argument("--base-url", help="instead of https://<shop> (a test service)")
    farm = tenant(set_.add_parser("simplyprint", help="a SimplyPrint company's API key"))
    farm.add_argument("--company-id", type=int)
    farm.add_argument("--api-key", help="SimplyPrint API key" + secret)
    farm.add_argument("--webhook-secret", help="secret we register with our webhook" + secret)
    farm.add_argument("--dispatch-mode", choices=("simplyprint_queue", "smart"))
    farm.add_argument("--base-url")
    farm.add_argument("--files-url")
    carrier = tenant(set_.add_parser("sendcloud", help="a Sendcloud API integration's keys"))
    carrier.add_argument("--public-key")
    carrier.add_argument("--secret-key", help="secret key" + secret)
    carrier.add_argument("--webhook-secret", help="Webhook Signature Key, if set" + secret)
    carrier.add_argument("--sender-address", type=int, help="sender address id")
    carrier.add_argument("--shipping-method", type=int, help="v2: default shipping method id")
    carrier.add_argument("--shipping-option", help="v3: default shipping option code")
    carrier.add_argument("--api-version", choices=("v2", "v3"))
    carrier.add_argument("--base-url")
    for parser in (shop, farm, carrier):
        parser.set_defaults(run=cmd_integration_set)
    show = tenant(integration.add_parser("show", help="connections, secrets as last four "
                                         "characters, and whether they work"))
    show.add_argument("service", nargs="?", choices=tuple(INTEGRATION_FLAGS))
    show.set_defaults(run=cmd_integration_show)
    test = tenant(integration.add_parser("test", help="one live read call with the stored "
                                         "credentials; prints what the service said"))
    test.add_argument("service", choices=tuple(INTEGRATION_FLAGS))
    test.set_defaults(run=cmd_integration_test)
    remove = tenant(integration.add_parser("remove", help="disconnect: remove our webhooks "
                                           "there and the stored credentials"))
    remove.add_argument("service", choices=tuple(INTEGRATION_FLAGS))
    remove.set_defaults(run=cmd_integration_remove)


def _sandbox_parser(sub: Any) -> None:
    sandbox = sub.add_parser("sandbox", help="run the Shopify/SimplyPrint/Sendcloud simulators "
                             "until Ctrl-C, or drive a running one")
    sandbox.add_argument("--speedup", type=float, default=60.0,
                         help="simulated seconds per real second (default 60)")
    sandbox.add_argument("--seed", type=int,
                         help="random seed (default: from the clock, so order ids never repeat)")
    sandbox.add_argument("--failure-rate", type=_rate, default=0.0,
                         help="share of prints that fail on the simulated farm")
    sandbox.add_argument("--loss-rate", type=_rate, default=0.0,
                         help="share of webhooks every simulator drops")
    sandbox.set_defaults(run=cmd_sandbox)
    services = sandbox.add_subparsers(dest="service")
    shopify = services.add_parser("shopify", help="the Shopify sandbox's controls").add_subparsers(
        dest="action", required=True)
    send = shopify.add_parser("send-order", help="create an order; posts a signed orders/create")
    send.add_argument("--sku", action="append", help="line item SKU (repeat for more lines)")
    send.add_argument("--quantity", action="append", type=int,
                      help="quantity of the matching --sku (default 1)")
    send.add_argument("--email")
    send.add_argument("--url", help="Shopify sandbox base URL (default: the running stack's)")
    send.set_defaults(run=cmd_send_order)
    cancel = shopify.add_parser("cancel-order", help="cancel; posts a signed orders/cancelled")
    cancel.add_argument("order_id", type=int)
    cancel.add_argument("--reason", default="customer")
    cancel.add_argument("--url", help="Shopify sandbox base URL (default: the running stack's)")
    cancel.set_defaults(run=cmd_cancel_order)


def _demo_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="send N sandbox orders through the whole flow and report")
    demo.add_argument("--orders", type=int, default=10)
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--failure-rate", type=_rate, default=0.0,
                      help="share of prints the sandbox farm fails (default 0)")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (300)")
    demo.add_argument("--stock-ratio", type=_rate, default=0.0,
                      help="turn Stock Management on and stock about this share of the demand "
                           "first (0..1, default 0)")
    demo.add_argument("--speedup", type=float, default=3600.0,
                      help="sandbox clock speed-up (default 3600: a print hour per second)")
    demo.add_argument("--api", help="base URL of a running stack (default: the configured "
                      "port, else start one in-process)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    demo.add_argument("--chaos", action="store_true",
                      help="kill an entity host, the outbox dispatcher, the scheduler and a Serve "
                           "replica, and restart PostgreSQL and Redis, at seeded random moments "
                           "(needs the stack the demo starts itself)")
    demo.add_argument("--seed", type=int, default=1, help="the chaos run's seed (default 1)")
    demo.set_defaults(run=cmd_demo)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
        run: Command = args.run
        return run(args, settings)
    except (ConfigError, CliError, DemoError, ValueError) as error:
        print(f"forma3d: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
