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
                          stock_ratio=args.stock_ratio)
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
    _sandbox_parser(sub)
    _demo_parser(sub)
    return root


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
