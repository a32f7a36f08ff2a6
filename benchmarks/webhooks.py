"""Shopify order webhooks through Ray Serve: accepted per second, latency, and exactly-once ingest.

    .venv/bin/python benchmarks/webhooks.py [--webhooks 3000] [--concurrency 64] [--repeat 1]
                                            [--json]

Starts the whole stack in-process (embedded PostgreSQL and Redis, local Ray, Serve) in a fresh
data directory, without sandboxes; every webhook is a distinct, correctly signed orders/create.
Each is verified, stored raw and answered; the order entities then create the orders (held:
their SKUs have no mapping, so no farm is needed). Accepted counts 200 answers only; every
other answer is reported by status (`statuses`), and a failed connection as "error". Orders
created are counted from PostgreSQL. `--repeat N` fires N rounds at the same stack, each to a
fresh tenant, and reports the median, min and max of each figure.
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

import httpx
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import percentile, repeated, show
from forma3d.config import load_settings
from forma3d.db.pool import create_pool
from forma3d.integrations.settings import ShopifySettings
from forma3d.integrations.signatures import shopify_signature
from forma3d.stack import start_stack
from forma3d.store.integrations import save_integration
from forma3d.store.tenants import create_tenant

SECRET = "bench-webhook-secret"


def order_body(number: int) -> bytes:
    return json.dumps({
        "id": 7_000_000_000 + number, "name": f"#{10_000 + number}", "email": "b@example.com",
        "created_at": "2026-11-24T10:00:00Z", "currency": "EUR", "total_price": "19.95",
        "line_items": [{"id": 9_000_000_000 + number, "sku": "UNMAPPED-BENCH", "quantity": 1,
                        "title": "Bench", "properties": []}]}).encode()


ORDERS_WAIT_SECONDS = 600.0


async def fire(url: str, numbers: range, concurrency: int,
               quiet: bool) -> tuple[list[float], Counter[str]]:
    """Latencies of the 200 answers, and how many answers of each status (or "error")."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    gate = asyncio.Semaphore(concurrency)
    bar = None if quiet else tqdm(total=len(numbers), desc="webhooks", unit="req",
                                  file=sys.stderr)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(number: int) -> None:
            body = order_body(number)
            headers = {"X-Shopify-Topic": "orders/create",
                       "X-Shopify-Hmac-Sha256": shopify_signature(SECRET, body),
                       "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                       "X-Shopify-Event-Id": str(uuid.uuid4()),
                       "Content-Type": "application/json"}
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    statuses["error"] += 1
                    return
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
            statuses[str(response.status_code)] += 1
            if bar is not None:
                bar.update()

        await asyncio.gather(*(one(n) for n in numbers))
    if bar is not None:
        bar.close()
    return latencies, statuses


async def run(args: argparse.Namespace, database_url: str, base: str) -> dict[str, Any]:
    pool = await create_pool(database_url, max_size=2)
    tenant = await create_tenant(pool, f"bench-{uuid.uuid4().hex[:8]}")
    await save_integration(pool, tenant, ShopifySettings(
        shop_domain="bench.myshopify.com", access_token="x", webhook_secret=SECRET))
    url = f"{base}/webhooks/{tenant}/shopify"
    warm = 50
    _, warm_statuses = await fire(url, range(warm), 8, quiet=True)  # replicas, pools, entities
    warm_accepted = warm_statuses["200"]
    started = time.perf_counter()
    latencies, statuses = await fire(url, range(warm, warm + args.webhooks), args.concurrency,
                                     args.json)
    elapsed = time.perf_counter() - started
    accepted = statuses["200"]
    # Every accepted webhook becomes an order; wait for them, but not forever.
    deadline = time.perf_counter() + ORDERS_WAIT_SECONDS
    while await pool.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1",
                              tenant) < accepted + warm_accepted:
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.2)
    ingested = time.perf_counter() - started
    stored = await pool.fetchval("SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1",
                                 tenant)
    orders = await pool.fetchval("SELECT count(*) FROM orders WHERE tenant_id = $1", tenant)
    await pool.close()
    stored -= warm_accepted
    orders -= warm_accepted
    return {"webhooks": args.webhooks, "concurrency": args.concurrency,
            "accepted": accepted, "not_accepted": args.webhooks - accepted,
            "statuses": dict(statuses),
            "accepted_per_s": round(accepted / elapsed, 1),
            "latency_200_p50_ms": round(percentile(latencies, 50), 1),
            "latency_200_p99_ms": round(percentile(latencies, 99), 1),
            "inbox_rows": stored, "orders_created": orders,
            "orders_per_s": round(orders / ingested, 1),
            "orders_timed_out": orders < accepted,
            "throughput_optimized": args.throughput_optimized}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--throughput-optimized", action="store_true",
                        help="RAY_SERVE_THROUGHPUT_OPTIMIZED=1 for the Serve proxy")
    parser.add_argument("--port", type=int, default=8400)
    parser.add_argument("--repeat", type=int, default=1, help="rounds; figures are their median")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.throughput_optimized:
        os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
    os.environ.update({"FORMA3D_DATA_DIR": tempfile.mkdtemp(prefix="forma3d-bench-"),
                       "FORMA3D_HTTP_PORT": str(args.port), "FORMA3D_SANDBOX": "false"})
    os.environ.pop("DATABASE_URL", None)
    stack = start_stack(load_settings(), dashboard=False)
    try:
        base = f"http://127.0.0.1:{args.port}"
        result = repeated(lambda: asyncio.run(run(args, stack.services.database_url, base)),
                          args.repeat)
    finally:
        stack.stop()
    show(result, args.json)


if __name__ == "__main__":
    main()
