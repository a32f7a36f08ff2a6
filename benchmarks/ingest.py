"""Webhook ingest: our Serve ingress against the plain app a user would write instead.

    .venv/bin/python benchmarks/ingest.py [--webhooks 2000] [--concurrency 64] [--json]

One run, one PostgreSQL server (the stack's), one load generator (this process: a raw asyncio
HTTP/1.1 keep-alive client, one connection per sender, so the generator costs little CPU):

1. the stack starts as `scripts/up` runs it (Ray, entity hosts, dispatcher, the Serve app with
   the options of forma3d/stack.py), without sandboxes, in a fresh data directory;
2. the plain app (benchmarks/plain_ingest.py: Starlette + uvicorn + asyncpg, verify the HMAC,
   insert the raw body) starts as a subprocess on the same PostgreSQL;
3. each target gets a warm-up, then `--webhooks` distinct, correctly signed orders/create
   webhooks from `--concurrency` senders; accepted/s counts 200s only;
4. after our burst, the orders our entities create downstream are counted until the backlog
   has drained (orders = webhooks accepted).

`--env NAME=VALUE` (repeatable) sets an environment variable before the stack starts: the
levers (RAY_SERVE_ENABLE_HA_PROXY, RAY_SERVE_THROUGHPUT_OPTIMIZED, FORMA3D_WEBHOOK_*).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import machine, percentile
from forma3d.integrations.signatures import shopify_signature

SECRET = "bench-webhook-secret"
HERE = Path(__file__).resolve().parent


def order_body(number: int) -> bytes:
    return json.dumps({
        "id": 7_000_000_000 + number, "name": f"#{10_000 + number}", "email": "b@example.com",
        "created_at": "2026-11-24T10:00:00Z", "currency": "EUR", "total_price": "19.95",
        "line_items": [{"id": 9_000_000_000 + number, "sku": "UNMAPPED-BENCH", "quantity": 1,
                        "title": "Bench", "properties": []}],
        "shipping_address": {"name": "Bench Buyer", "address1": "Stadhuisplein 10",
                             "city": "Eindhoven", "zip": "5611 EM", "country_code": "NL"},
    }).encode()


def request_bytes(path: str, number: int) -> bytes:
    body = order_body(number)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Shopify-Topic: orders/create\r\n"
            f"X-Shopify-Hmac-Sha256: {shopify_signature(SECRET, body)}\r\n"
            f"X-Shopify-Webhook-Id: {uuid.uuid4()}\r\nX-Shopify-Event-Id: {uuid.uuid4()}\r\n"
            "X-Shopify-Shop-Domain: bench.myshopify.com\r\n\r\n")
    return head.encode() + body


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the server keeps the connection open."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])
               if k}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


async def fire(port: int, path: str, numbers: range, concurrency: int) -> dict[str, Any]:
    """Send every webhook from `concurrency` keep-alive connections; figures of the burst."""
    pending = [request_bytes(path, n) for n in numbers]  # signed before the clock starts
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def sender() -> None:
        reader = writer = None
        while pending:
            raw = pending.pop()
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            started = time.perf_counter()
            try:
                writer.write(raw)
                status, keep = await _response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                status, keep = 599, False
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] += 1
            if not keep:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    accepted = statuses.get(200, 0)
    return {"sent": len(numbers), "accepted": accepted,
            "accepted_per_s": round(accepted / elapsed, 1), "elapsed_s": round(elapsed, 2),
            "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1),
            "other_statuses": {str(k): v for k, v in sorted(statuses.items()) if k != 200}}


async def wait_http(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    from forma3d.db.pool import create_pool
    from forma3d.integrations.settings import ShopifySettings
    from forma3d.store.integrations import save_integration
    from forma3d.store.tenants import create_tenant

    pool = await create_pool(database_url, max_size=2)
    tenant = await create_tenant(pool, f"bench-{uuid.uuid4().hex[:8]}")
    await save_integration(pool, tenant, ShopifySettings(
        shop_domain="bench.myshopify.com", access_token="x", webhook_secret=SECRET))
    ours_path = f"/webhooks/{tenant}/shopify"
    plain = await asyncio.create_subprocess_exec(
        sys.executable, str(HERE / "plain_ingest.py"), "--port", str(args.plain_port),
        "--database-url", database_url, env={**os.environ, "PLAIN_SECRET": SECRET})
    try:
        await wait_http(args.plain_port)
        warm, n = args.warmup, args.webhooks
        load_start = os.getloadavg()[0]
        await fire(args.plain_port, "/webhooks/shopify", range(warm), 8)
        plain_result = await fire(args.plain_port, "/webhooks/shopify", range(warm, warm + n),
                                  args.concurrency)
    finally:
        plain.terminate()
        await plain.wait()
    # Ours: warm up (replica, pools, entities), let the warm-up's orders drain, then the burst.
    await fire(args.port, ours_path, range(10**6, 10**6 + warm), 8)
    count = "SELECT count(*) FROM orders WHERE tenant_id = $1"
    while await pool.fetchval(count, tenant) < warm:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    before = await pool.fetchval(count, tenant)
    started = time.perf_counter()
    ours = await fire(args.port, ours_path, range(2 * 10**6, 2 * 10**6 + n), args.concurrency)
    burst_end = time.perf_counter()
    during = await pool.fetchval(count, tenant) - before
    deadline = burst_end + args.drain_timeout
    created = during
    while created < ours["accepted"] and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        created = await pool.fetchval(count, tenant) - before
    drained = time.perf_counter()
    load_end = os.getloadavg()[0]
    await pool.execute("DROP TABLE IF EXISTS plain_webhooks")
    await pool.close()
    ours["orders_created"] = created
    ours["orders_created_during_burst"] = during
    ours["orders_per_s"] = round(created / (drained - started), 1)
    ours["backlog_drain_s"] = round(drained - burst_end, 2)
    ours["drained"] = created >= ours["accepted"]
    ratio = ours["accepted_per_s"] / plain_result["accepted_per_s"] \
        if plain_result["accepted_per_s"] else 0.0
    return {"webhooks": n, "concurrency": args.concurrency, "plain": plain_result, "ours": ours,
            "ratio": round(ratio, 2), "load_average_start": round(load_start, 2),
            "load_average_end": round(load_end, 2), "levers": args.env,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--plain-port", type=int, default=8401)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for pair in args.env:
        name, _, value = pair.partition("=")
        os.environ[name] = value
    os.environ.update({"FORMA3D_DATA_DIR": tempfile.mkdtemp(prefix="forma3d-ingest-"),
                       "FORMA3D_HTTP_PORT": str(args.port), "FORMA3D_SANDBOX": "false"})
    os.environ.pop("DATABASE_URL", None)
    from forma3d.config import load_settings
    from forma3d.stack import start_stack

    stack = start_stack(load_settings(), dashboard=False)
    try:
        asyncio.run(wait_http(args.port))
        result = asyncio.run(run(args, stack.services.database_url))
    finally:
        stack.stop()
    if args.json:
        print(json.dumps(result))
        return
    for name in ("plain", "ours"):
        figures = result[name]
        print(f"{name:>6}: {figures['accepted_per_s']:>8} accepted/s  p50 {figures['p50_ms']} ms"
              f"  p99 {figures['p99_ms']} ms  other {figures['other_statuses']}")
    print(f" ratio: {result['ratio']} (ours / plain accepted/s)")
    ours = result["ours"]
    print(f"orders: {ours['orders_per_s']}/s downstream, backlog drained in "
          f"{ours['backlog_drain_s']} s ({ours['orders_created']} created)")
    print(f"  load: {result['load_average_start']} -> {result['load_average_end']}")


if __name__ == "__main__":
    main()
