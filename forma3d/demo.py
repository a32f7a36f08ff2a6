"""`forma3d demo`: signed Shopify orders through the sandbox, to FULFILLED, then a report.

Every figure in the report is read back from PostgreSQL and the sandboxes, so the demo shows what
the system did, not what the demo meant to do. Only the Shopify order ids of this run are kept,
to scope the queries to it.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from forma3d.config import Settings

TERMINAL = ("FULFILLED", "FAILED", "CANCELLED")
# Single-part, multi-part (assemblies), quantity > 1 and mixed orders over the catalog SKUs.
MIX: tuple[tuple[tuple[str, int], ...], ...] = (
    (("BENCHY-PLA-RED", 1),),
    (("VASE-SPIRAL-PLA-WHITE", 1),),
    (("BENCHY-PLA-RED", 3),),
    (("PLANTER-HEX-PLA-GREEN", 1),),
    (("GRID-BIN-2X3-PETG-BLACK", 2),),
    (("BENCHY-PLA-RED", 2), ("VASE-SPIRAL-PLA-WHITE", 1)),
)


# What a query raises while PostgreSQL restarts; the demo's pool reconnects on the next one.
DATABASE_AWAY: tuple[type[BaseException], ...] = (OSError, asyncpg.PostgresError,
                                                  asyncpg.InterfaceError)


class DemoError(RuntimeError):
    """The demo cannot run (no stack, no sandbox); the message says what to do."""


@dataclass(frozen=True)
class DemoOptions:
    orders: int
    failure_rate: float = 0.0
    timeout: float = 300.0
    speedup: float = 3600.0  # one simulated hour of printing per real second
    stock_ratio: float = 0.0  # share of the demand put on the shelf first (Stock Management on)
    api: str | None = None
    shopify_url: str | None = None
    simplyprint_url: str | None = None
    chaos: bool = False  # inject faults (forma3d.chaos) into a stack started here
    seed: int = 1  # the chaos run's seed: which faults hit when


@dataclass(frozen=True)
class Target:
    """Where the demo sends orders and reads results."""

    api: str
    database_url: str
    urls: dict[str, str]
    tenant_id: uuid.UUID
    stack: Any = None  # the Stack, when the demo started it in-process


def order_lines(index: int) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": qty} for sku, qty in MIX[index % len(MIX)]]


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p99 in milliseconds (None when nothing finished)."""
    if not values:
        return {"p50": None, "p99": None}
    ordered = sorted(values)

    def rank(p: int) -> float:
        index = -(-len(ordered) * p // 100) - 1  # ceil(n * p / 100) - 1
        return round(ordered[max(0, min(len(ordered) - 1, index))], 1)

    return {"p50": rank(50), "p99": rank(99)}


def ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_ready(api: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready(api):
        if time.monotonic() > deadline:
            raise DemoError(f"the stack at {api} did not become ready in {timeout:.0f}s")
        time.sleep(0.5)


@contextmanager
def target(options: DemoOptions, settings: Settings) -> Iterator[Target]:
    """The running stack (given by --api or answering on the configured port), else one
    started here in-process and stopped afterwards."""
    from forma3d.store.tenants import DEFAULT_TENANT_ID

    api = (options.api or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")
    if options.api or ready(api):
        if options.chaos:
            raise DemoError(f"--chaos injects faults into a stack it starts itself, and one "
                            f"answers at {api}: stop it, or set FORMA3D_HTTP_PORT to a free "
                            "port")
        if not ready(api):
            raise DemoError(f"no ready stack at {api} (start one with `forma3d up`)")
        with _attached_database(settings) as database_url:
            yield Target(api, database_url, _sandbox_urls(options, settings, api),
                         DEFAULT_TENANT_ID)
        return
    if not settings.sandbox:
        raise DemoError("FORMA3D_SANDBOX is off and no stack is running: the demo needs the "
                        "sandbox")
    from forma3d.stack import start_stack

    print(f"forma3d demo: no stack at {api}; starting one in-process ...", file=sys.stderr,
          flush=True)
    if options.chaos and not settings.ray_address:
        # Faults go only to a Ray cluster of this run's own, never to one found on the machine.
        settings = settings.model_copy(update={"ray_address": "local"})
    stack = start_stack(settings, dashboard=False, sandbox_speedup=options.speedup)
    try:
        if stack.sandbox is None:
            raise DemoError(f"the in-process stack has no sandbox ({stack.sandbox_note})")
        _wait_ready(api)
        yield Target(api, stack.services.database_url, stack.sandbox.urls, DEFAULT_TENANT_ID,
                     stack)
    finally:
        stack.stop()


@contextmanager
def _attached_database(settings: Settings) -> Iterator[str]:
    from forma3d.platform.embedded import start_services

    services = start_services(settings.database_url, "unused", settings.data_dir)
    try:
        yield services.database_url
    finally:
        services.stop()


def _sandbox_urls(options: DemoOptions, settings: Settings, api: str) -> dict[str, str]:
    """Flags first, then what `forma3d up` wrote in the data directory, then its default ports."""
    from sandbox.runner import read_state

    state = read_state(settings.data_dir) or {}
    known: dict[str, str] = state.get("urls", {}) if state.get("api") == api else {}
    port = int(api.rsplit(":", 1)[-1]) if api.rsplit(":", 1)[-1].isdigit() else 8000
    host = api.split("://", 1)[-1].rsplit(":", 1)[0]
    urls = {name: known.get(name, f"http://{host}:{port + offset}")
            for offset, name in enumerate(("shopify", "simplyprint", "sendcloud"), start=1)}
    if options.shopify_url:
        urls["shopify"] = options.shopify_url.rstrip("/")
    if options.simplyprint_url:
        urls["simplyprint"] = options.simplyprint_url.rstrip("/")
    return urls


async def _configure(client: httpx.AsyncClient, t: Target, options: DemoOptions) -> None:
    """Failure rate on the farm and the shared sandbox clock's speed-up."""
    try:
        farm = await client.post(f"{t.urls['simplyprint']}/_sandbox/farm",
                                 json={"failure_rate": options.failure_rate})
        farm.raise_for_status()
        clock = await client.post(f"{t.urls['shopify']}/_sandbox/clock",
                                  json={"speedup": options.speedup})
        clock.raise_for_status()
    except httpx.HTTPError as error:
        raise DemoError(f"the sandbox does not answer ({error}); is the stack in sandbox "
                        "mode?") from None


async def _seed_stock(conn: Any, t: Target, orders: int, ratio: float) -> dict[str, int]:
    """Turn Stock Management on and put about `ratio` of the demand of the orders to come on
    the shelf (ADJUSTED entries with a reason, through the store's ledger); returns the units
    added per SKU."""
    from forma3d.domain.inventory.ledger import direction_of
    from forma3d.domain.inventory.states import LedgerType, ReferenceType
    from forma3d.store import stock

    demand: Counter[str] = Counter()
    for index in range(orders):
        for line in order_lines(index):
            demand[line["sku"]] += line["quantity"]
    added: dict[str, int] = {}
    async with conn.transaction():
        await stock.set_tenant_settings(conn, t.tenant_id, {"stock_management_enabled": True})
        for sku, units in sorted(demand.items()):
            mapping_id = await conn.fetchval(
                "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2"
                " AND variant_id = ''", t.tenant_id, sku)
            if mapping_id is None:
                continue
            level = await stock.level(conn, t.tenant_id, mapping_id)
            missing = round(units * ratio) - (level["available"] if level else 0)
            if missing > 0:
                await stock.record(conn, t.tenant_id, mapping_id, LedgerType.ADJUSTED, missing,
                                   stock.Reference(ReferenceType.USER, "forma3d demo",
                                                   created_by="forma3d demo"),
                                   direction=direction_of(LedgerType.ADJUSTED, missing),
                                   reason=f"demo: stock for --stock-ratio {ratio:g}")
                added[sku] = missing
    return added


async def _send(client: httpx.AsyncClient, t: Target, count: int) -> list[int]:
    ids: list[int] = []
    for index in range(count):
        response = await client.post(f"{t.urls['shopify']}/_sandbox/orders",
                                     json={"line_items": order_lines(index)})
        response.raise_for_status()
        ids.append(int(response.json()["order"]["id"]))
    return ids


async def _statuses(conn: Any, t: Target, ids: list[int]) -> dict[int, str]:
    rows = await conn.fetch(
        "SELECT shopify_order_id, status FROM orders"
        " WHERE tenant_id = $1 AND shopify_order_id = ANY($2)", t.tenant_id, ids)
    return {int(r["shopify_order_id"]): str(r["status"]) for r in rows}


async def _wait(conn: Any, t: Target, ids: list[int], timeout: float, show: bool) -> bool:
    """Poll PostgreSQL until every order is terminal or the timeout passes."""
    from tqdm import tqdm

    deadline = time.monotonic() + timeout
    with tqdm(total=len(ids), desc="orders done", unit="order", file=sys.stderr,
              disable=not show, dynamic_ncols=True) as bar:
        while True:
            try:
                statuses = await _statuses(conn, t, ids)
            except DATABASE_AWAY:  # restarting (a chaos run): ask again shortly
                await asyncio.sleep(0.5)
                continue
            done = sum(1 for s in statuses.values() if s in TERMINAL)
            bar.update(done - bar.n)
            counts = Counter(statuses.values())
            bar.set_postfix({k.lower(): v for k, v in sorted(counts.items())}, refresh=False)
            if done == len(ids):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.25)


async def _farm_jobs(client: httpx.AsyncClient, t: Target) -> list[dict[str, Any]]:
    jobs = await client.get(f"{t.urls['simplyprint']}/_sandbox/jobs")
    jobs.raise_for_status()
    found: list[dict[str, Any]] = jobs.json()["jobs"]
    return found


async def _farm(client: httpx.AsyncClient, t: Target, keys: set[str], mode: str,
                before: set[str], ours: int) -> dict[str, int]:
    """The farm's side. SimplyPrint's queue: queue items repeating a job attempt (same
    `job_key#attempt` note) are duplicates. Smart dispatch: our printers start farm jobs
    directly, so every farm job started since the demo began beyond the prints our jobs account
    for (`ours`: attempts made and prints running) is a duplicate. Failed prints are counted
    from the farm's own job list."""
    from sandbox.server import SandboxConfig

    if mode == "smart":
        farm_jobs = [j for j in await _farm_jobs(client, t) if str(j.get("uid")) not in before]
        return {"duplicates": 0, "duplicate_jobs": max(0, len(farm_jobs) - ours),
                "queue_items": 0, "jobs": len(farm_jobs),
                "failed": sum(1 for j in farm_jobs if j.get("state") == "failed")}
    sp = SandboxConfig().simplyprint
    response = await client.get(f"{t.urls['simplyprint']}/{sp.company_id}/queue/GetItems",
                                params={"groups": ""}, headers={"X-API-KEY": sp.api_key})
    response.raise_for_status()
    queue = response.json().get("queue") or {}
    items = [i for i in [*queue.get("items", []), *queue.get("done_items", [])]
             if str(i.get("note") or "").split("#")[0] in keys]
    notes = Counter(str(i["note"]) for i in items)
    item_ids = {i["id"] for i in items}
    farm_jobs = [j for j in await _farm_jobs(client, t) if j.get("queue_item_id") in item_ids]
    printed = Counter(j["queue_item_id"] for j in farm_jobs)
    return {"duplicates": sum(n - 1 for n in notes.values() if n > 1),
            "duplicate_jobs": sum(n - 1 for n in printed.values() if n > 1),
            "queue_items": len(items), "jobs": len(farm_jobs),
            "failed": sum(1 for j in farm_jobs if j.get("state") == "failed")}


async def _parcels(client: httpx.AsyncClient, t: Target, names: set[str]) -> dict[str, int]:
    """Sendcloud's side: parcels made for these orders (by order number), and how many of
    them repeat an order's parcel."""
    response = await client.get(f"{t.urls['sendcloud']}/_sandbox/parcels")
    response.raise_for_status()
    numbers = Counter(str(p.get("order_number")) for p in response.json()["parcels"]
                      if str(p.get("order_number")) in names)
    return {"parcels": sum(numbers.values()),
            "duplicates": sum(n - 1 for n in numbers.values() if n > 1)}


async def _dead_letters(conn: Any, t: Target, since: Any) -> dict[str, int]:
    """Outbox messages refused for good and webhook deliveries dead-lettered during the run."""
    outbox = await conn.fetchval(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND created_at >= $2"
        " AND done_at IS NOT NULL AND last_error IS NOT NULL", t.tenant_id, since)
    webhooks = await conn.fetchval(
        "SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1 AND received_at >= $2"
        " AND dead_lettered_at IS NOT NULL", t.tenant_id, since)
    return {"outbox": int(outbox), "webhooks": int(webhooks)}


async def _report(conn: Any, client: httpx.AsyncClient, t: Target, ids: list[int],
                  since: Any, before: set[str]) -> dict[str, Any]:
    # Timed from the webhook's arrival (its first delivery stored in the inbox), not from the
    # order row, which the tenant entity inserts after the outbox has delivered the webhook.
    orders = await conn.fetch(
        """WITH arrived AS (
               SELECT (convert_from(body, 'UTF8')::jsonb ->> 'id')::bigint AS shopify_id,
                      min(received_at) AS at
                 FROM webhook_inbox
                WHERE tenant_id = $1 AND source = 'shopify' AND topic = 'orders/create'
                GROUP BY 1)
           SELECT o.id, o.status, o.reason,
                  extract(epoch FROM o.queued_at - a.at) * 1000 AS to_queued,
                  extract(epoch FROM o.fulfilled_at - a.at) * 1000 AS to_fulfilled
             FROM orders o LEFT JOIN arrived a ON a.shopify_id = o.shopify_order_id
            WHERE o.tenant_id = $1 AND o.shopify_order_id = ANY($2)""",
        t.tenant_id, ids)
    order_ids = [o["id"] for o in orders]
    statuses = Counter(str(o["status"]) for o in orders)
    jobs = await conn.fetchrow(
        """SELECT count(*) AS total, count(*) - count(DISTINCT job_key) AS duplicates,
                  count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
                  coalesce(sum(attempts), 0) AS failed_attempts
             FROM print_jobs WHERE tenant_id = $1 AND order_id = ANY($2)""",
        t.tenant_id, order_ids)
    keys = {str(r["job_key"]) for r in await conn.fetch(
        "SELECT job_key FROM print_jobs WHERE tenant_id = $1 AND order_id = ANY($2)",
        t.tenant_id, order_ids)}
    shipments = await conn.fetchval(
        "SELECT count(*) FROM shipments WHERE tenant_id = $1 AND order_id = ANY($2)"
        " AND parcel_id IS NOT NULL", t.tenant_id, order_ids)
    # Which Sendcloud API shipped these orders (issue 17): the shipments' own, else the tenant's.
    apis = [r["api_version"] for r in await conn.fetch(
        "SELECT DISTINCT api_version FROM shipments WHERE tenant_id = $1 AND order_id = ANY($2)"
        " AND parcel_id IS NOT NULL ORDER BY 1", t.tenant_id, order_ids)]
    configured = await conn.fetchval(
        "SELECT config->>'api_version' FROM integrations WHERE tenant_id = $1"
        " AND service = 'sendcloud'", t.tenant_id)
    listed = await client.get(f"{t.urls['shopify']}/_sandbox/orders")
    listed.raise_for_status()
    ours = [o for o in listed.json()["orders"] if int(o["id"]) in set(ids)]
    mode = await conn.fetchval(
        "SELECT coalesce(config->>'dispatch_mode', 'smart') FROM integrations"
        " WHERE tenant_id = $1 AND service = 'simplyprint'", t.tenant_id) or "smart"
    # The prints our jobs account for: each attempt that ended, and each print still running
    # (stock jobs printed meanwhile included, as they run on the same farm).
    accounted = await conn.fetchval(
        """SELECT coalesce(sum(attempts + CASE WHEN status IN ('COMPLETED', 'PRINTING',
                                                               'ASSIGNED') THEN 1 ELSE 0 END), 0)
             FROM print_jobs WHERE tenant_id = $1
              AND (order_id = ANY($2) OR (purpose = 'STOCK' AND updated_at >= $3))""",
        t.tenant_id, order_ids, since)
    farm = await _farm(client, t, keys, mode, before, int(accounted))
    names = {str(r["name"]) for r in await conn.fetch(
        "SELECT name FROM orders WHERE tenant_id = $1 AND id = ANY($2)", t.tenant_id, order_ids)}
    parcels = await _parcels(client, t, names)
    ledger = await conn.fetchrow(
        """SELECT coalesce(sum(quantity) FILTER (WHERE entry_type = 'RESERVED'), 0) AS reserved,
                  coalesce(sum(quantity) FILTER (WHERE entry_type = 'CONSUMED'), 0) AS consumed,
                  coalesce(sum(quantity) FILTER (WHERE entry_type = 'RELEASED'), 0) AS released
             FROM stock_ledger WHERE tenant_id = $1 AND order_id = ANY($2)""",
        t.tenant_id, order_ids)
    demanded = await conn.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM line_items WHERE tenant_id = $1"
        " AND order_id = ANY($2)", t.tenant_id, order_ids)
    # The order side, independent of the ledger: units printed are a line item's print jobs
    # over its product's parts per unit; the rest of what was ordered came from the shelf.
    printed = await conn.fetchval(
        """SELECT coalesce(sum(j.jobs / p.per_unit), 0) FROM line_items li
           JOIN LATERAL (SELECT count(*) AS jobs FROM print_jobs j
                          WHERE j.tenant_id = li.tenant_id AND j.line_item_id = li.id) j ON true
           JOIN LATERAL (SELECT sum(quantity) AS per_unit FROM mapping_parts m
                          WHERE m.tenant_id = li.tenant_id AND m.mapping_id = li.mapping_id
                         ) p ON p.per_unit > 0
          WHERE li.tenant_id = $1 AND li.order_id = ANY($2)""", t.tenant_id, order_ids)
    reserved, consumed = int(ledger["reserved"]), int(ledger["consumed"])
    shipped_all = statuses.get("FULFILLED", 0) == len(ids)
    report: dict[str, Any] = {
        "dispatch_mode": mode,
        "orders": len(orders),
        "orders_sent": len(ids),
        "fulfilled": statuses.get("FULFILLED", 0),
        "failed": statuses.get("FAILED", 0),
        "cancelled": statuses.get("CANCELLED", 0),
        "statuses": dict(sorted(statuses.items())),
        "print_jobs": int(jobs["total"]),
        "print_jobs_completed": int(jobs["completed"]),
        "print_failures": int(jobs["failed_attempts"]),
        "duplicate_print_jobs": int(jobs["duplicates"]) + farm["duplicates"],
        "farm_queue_items": farm["queue_items"],
        "farm_prints": farm["jobs"],
        "farm_prints_failed": farm["failed"],
        "duplicate_farm_jobs": farm["duplicate_jobs"],
        "parcels": parcels["parcels"],
        "duplicate_parcels": parcels["duplicates"],
        "shipments": int(shipments),
        "sendcloud_api": "+".join(apis) or configured,
        "units_ordered": int(demanded),
        # Read back from the ledger: units reserved for these orders, and how many of them
        # left the shelf when their orders shipped (equal once every order is fulfilled).
        "units_from_stock": reserved,
        "units_printed": int(printed),
        "stock_units_consumed": consumed,
        "stock_units_released": int(ledger["released"]),
        # The ledger agrees with the orders: what they did not print it reserved, and (once all
        # shipped) consumed.
        "stock_ledger_agrees": int(demanded) - int(printed) == reserved
        and (consumed == reserved if shipped_all else consumed <= reserved),
        "shopify_fulfillments": sum(
            1 for o in ours for f in o.get("fulfillments", []) if f.get("status") == "success"),
        "shopify_fulfilled_orders": sum(1 for o in ours if o.get("fulfillment_status")
                                        == "fulfilled"),
        "duplicate_shopify_fulfillments": sum(
            max(0, sum(1 for f in o.get("fulfillments", []) if f.get("status") == "success") - 1)
            for o in ours),
        "dead_letters": await _dead_letters(conn, t, since),
        "webhook_to_queued_ms": percentiles(
            [float(o["to_queued"]) for o in orders if o["to_queued"] is not None]),
        "webhook_to_fulfilled_ms": percentiles(
            [float(o["to_fulfilled"]) for o in orders if o["to_fulfilled"] is not None]),
    }
    if statuses.get("FULFILLED", 0) < len(ids):
        report["diagnostics"] = await _diagnostics(conn, t, ids, orders)
    return report


async def _diagnostics(conn: Any, t: Target, ids: list[int],
                       orders: Sequence[Any]) -> dict[str, Any]:
    """What an operator looks at when orders are stuck: reasons, outbox and inbox errors."""
    outbox = await conn.fetch(
        "SELECT message_type, left(last_error, 300) AS last_error, count(*) AS messages,"
        " max(attempts) AS max_attempts FROM outbox WHERE tenant_id = $1"
        " AND last_error IS NOT NULL AND done_at IS NULL GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10",
        t.tenant_id)
    inbox = await conn.fetch(
        "SELECT source, topic, error FROM webhook_inbox WHERE tenant_id = $1"
        " AND error IS NOT NULL ORDER BY id DESC LIMIT 10", t.tenant_id)
    # Sessions holding a transaction open for long: the usual sign of a stuck handler.
    stuck = await conn.fetch(
        """SELECT left(query, 200) AS last_query, count(*) AS sessions,
                  round(extract(epoch FROM max(now() - state_change))) AS seconds
             FROM pg_stat_activity
            WHERE datname = current_database() AND state = 'idle in transaction'
              AND now() - state_change > interval '10 seconds'
            GROUP BY 1 ORDER BY 2 DESC LIMIT 5""")
    waiting = Counter((str(o["status"]), o["reason"]) for o in orders
                      if o["status"] != "FULFILLED")
    return {
        "missing_orders": len(ids) - len(orders),
        "not_fulfilled": [{"status": status, "reason": reason, "orders": n}
                          for (status, reason), n in waiting.most_common(10)],
        "outbox_errors": [dict(r) for r in outbox],
        "inbox_errors": [dict(r) for r in inbox],
        "idle_in_transaction": [{**dict(r), "seconds": float(r["seconds"])} for r in stuck],
    }


async def drive(t: Target, options: DemoOptions, show_progress: bool) -> dict[str, Any]:
    from forma3d.db.pool import create_pool

    # A pool, not one connection: it reconnects after PostgreSQL restarts (a chaos run).
    pool = await create_pool(t.database_url, min_size=1, max_size=2)
    chaos: Any = None
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await _configure(client, t, options)
            seeded: dict[str, int] = {}
            if options.stock_ratio > 0:
                async with pool.acquire() as conn:
                    seeded = await _seed_stock(conn, t, options.orders, options.stock_ratio)
            since = await pool.fetchval("SELECT now()")
            before = {str(j.get("uid")) for j in await _farm_jobs(client, t)}
            started = time.monotonic()
            ids: list[int] = []
            if options.chaos:
                chaos = _start_chaos(pool, t, options, ids, started)
            ids.extend(await _send(client, t, options.orders))
            finished = await _wait(pool, t, ids, options.timeout, show_progress)
            if chaos is not None:  # every fault is in before the results are read
                await chaos.finish()
                finished = await _wait(pool, t, ids, options.timeout, False)
            elapsed = time.monotonic() - started
            report = await _report(pool, client, t, ids, since, before)
    finally:
        if chaos is not None:
            chaos.cancel()
        await pool.close()
    report.update({"stock_ratio": options.stock_ratio, "stock_seeded": seeded,
                   "timed_out": not finished, "elapsed_s": round(elapsed, 1),
                   "failure_rate": options.failure_rate, "speedup": options.speedup})
    if chaos is not None:
        report["chaos"] = {"seed": options.seed, "faults": chaos.report()}
    return report


def _start_chaos(pool: Any, t: Target, options: DemoOptions, ids: list[int],
                 started: float) -> Any:
    """Start injecting the seeded faults (a task on this loop); `ids` fills as orders go."""
    from forma3d.chaos import Chaos, plan, window_for

    async def done() -> int:
        try:
            return sum(s in TERMINAL for s in (await _statuses(pool, t, ids)).values())
        except DATABASE_AWAY:
            return -1

    chaos = Chaos(t.stack, options.seed, plan(options.seed, window_for(options.orders)))
    chaos.start(started, done)
    return chaos


def run_demo(options: DemoOptions, settings: Settings, *, show_progress: bool = True) -> dict[
        str, Any]:
    if options.orders < 1:
        raise DemoError("--orders must be at least 1")
    if not 0.0 <= options.failure_rate <= 1.0:
        raise DemoError("--failure-rate must be between 0 and 1")
    if not 0.0 <= options.stock_ratio <= 1.0:
        raise DemoError("--stock-ratio must be between 0 and 1")
    with target(options, settings) as t:
        return asyncio.run(drive(t, options, show_progress))


def summary(report: dict[str, Any]) -> str:
    """The human-readable report."""
    queued, fulfilled = report["webhook_to_queued_ms"], report["webhook_to_fulfilled_ms"]
    lines = [
        f"orders      {report['orders']} of {report['orders_sent']} sent: "
        f"{report['fulfilled']} fulfilled, {report['failed']} failed, "
        f"{report['cancelled']} cancelled  {report['statuses']}",
        f"print jobs  {report['print_jobs']} ({report['print_jobs_completed']} completed, "
        f"{report['duplicate_print_jobs']} duplicates); farm: {report['farm_prints']} prints, "
        f"{report['farm_prints_failed']} failed",
        f"shipments   {report['shipments']} (Sendcloud {report['sendcloud_api']}); "
        f"Shopify fulfillments "
        f"{report['shopify_fulfillments']}",
        f"stock       {report['units_from_stock']} of {report['units_ordered']} units from "
        f"stock ({report['stock_units_consumed']} consumed on shipment, "
        f"{report['units_printed']} printed; ledger "
        f"{'agrees' if report['stock_ledger_agrees'] else 'DISAGREES'} with the orders)",
        f"latency     webhook->queued p50 {queued['p50']} ms p99 {queued['p99']} ms; "
        f"webhook->fulfilled p50 {fulfilled['p50']} ms p99 {fulfilled['p99']} ms",
        f"duplicates  print jobs {report['duplicate_print_jobs']}, farm jobs "
        f"{report['duplicate_farm_jobs']}, parcels {report['duplicate_parcels']} (of "
        f"{report['parcels']}), Shopify fulfillments {report['duplicate_shopify_fulfillments']}; "
        f"dead letters: outbox {report['dead_letters']['outbox']}, webhooks "
        f"{report['dead_letters']['webhooks']}",
        f"run         {report['elapsed_s']} s at {report['speedup']:g}x simulated time, "
        f"farm failure rate {report['failure_rate']:g}"
        + ("  (TIMED OUT)" if report["timed_out"] else ""),
    ]
    for fault in report.get("chaos", {}).get("faults", []):
        lines.append(f"fault       {fault['at_s']:>7.2f} s  {fault['fault']:<18} "
                     f"{fault['error'] or fault['detail']} ({fault['orders_done']} orders done)")
    return "\n".join(lines)
