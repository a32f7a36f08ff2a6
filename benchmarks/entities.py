"""Activate thousands of printer and tenant entities on a few entity hosts and measure asks.

    .venv/bin/python benchmarks/entities.py [--printers 5000] [--tenants 200] [--hosts 4]
                                            [--repeat 1] [--json]

RSS counts only the Ray processes this run started (the driver's descendants), never another
cluster on a shared machine. `--repeat N` runs it all N times (a fresh Ray each time) and
reports the median, min and max of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from typing import Any

import ray
from tqdm import tqdm

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from actors.router import EntityRouter
from actors.runtime import start_runtime, stop_runtime
from benchmarks._common import own_ray_rss_mb, percentile, repeated, services, show
from forma3d.db.pool import create_pool
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.printer import GetPrinter
from forma3d.messaging.tenant import GetTenant


async def seed(database_url: str, tenants: int, printers: int) -> list[Envelope]:
    """Create the tenants and printers; return one `get` envelope per entity."""
    pool = await create_pool(database_url, max_size=2)
    run = uuid.uuid4().hex[:8]
    tenant_ids = [uuid.uuid4() for _ in range(tenants)]
    await pool.executemany("INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)",
                           [(t, f"bench-{run}-{i}") for i, t in enumerate(tenant_ids)])
    rows = [(uuid.uuid4(), tenant_ids[i % tenants], f"P{i:05d}", "MK4", 0.4, ["pla"])
            for i in range(printers)]
    await pool.copy_records_to_table(
        "printers", records=rows,
        columns=["id", "tenant_id", "name", "model", "nozzle_diameter", "tags"])
    await pool.close()
    envelopes = [GetTenant(tenant_id=t).envelope() for t in tenant_ids]
    envelopes += [GetPrinter(tenant_id=r[1], printer_id=r[0]).envelope() for r in rows]
    return envelopes


async def ask_all(router: EntityRouter, envelopes: list[Envelope], concurrency: int,
                  bar: tqdm | None) -> list[float]:  # type: ignore[type-arg]
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(envelope: Envelope) -> None:
        async with gate:
            started = time.perf_counter()
            await router.ask(envelope)
            latencies.append((time.perf_counter() - started) * 1000)
            if bar is not None:
                bar.update()

    await asyncio.gather(*(one(e) for e in envelopes))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--printers", type=int, default=5000)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="runs; figures are their median")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 64:
        parser.error("--hosts must be between 1 and 64")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    show(repeated(lambda: once(args), args.repeat), args.json)


def once(args: argparse.Namespace) -> dict[str, Any]:
    """One run on a fresh local Ray cluster."""
    with services() as svc:
        ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="forma3d",
                 object_store_memory=200 * 2**20, log_to_driver=False)
        try:
            runtime = start_runtime(svc.database_url, args.hosts)
            envelopes = asyncio.run(seed(svc.database_url, args.tenants, args.printers))
            result = asyncio.run(measure(runtime.router, envelopes, args))
            result["ray_rss_mb"], result["ray_processes_mb"] = own_ray_rss_mb()
            status = ray.get([h.status.remote() for h in runtime.hosts])
            result["entities_per_host"] = [s["entities"] for s in status]
        finally:
            stop_runtime(args.hosts)
            ray.shutdown()
    return result


async def measure(router: EntityRouter, envelopes: list[Envelope],
                  args: argparse.Namespace) -> dict[str, Any]:
    quiet = args.json
    bar = None if quiet else tqdm(total=len(envelopes), desc="activating", unit="entity")
    started = time.perf_counter()
    await ask_all(router, envelopes, args.concurrency, bar)
    activation_s = time.perf_counter() - started
    if bar is not None:
        bar.close()

    rng = random.Random(7)
    stream = [rng.choice(envelopes) for _ in range(args.messages)]
    bar = None if quiet else tqdm(total=len(stream), desc="asking", unit="msg")
    started = time.perf_counter()
    latencies = await ask_all(router, stream, args.concurrency, bar)
    elapsed = time.perf_counter() - started
    if bar is not None:
        bar.close()
    return {
        "entities": len(envelopes), "hosts": args.hosts,
        "messages_per_s": round(len(stream) / elapsed, 1),
        "ask_p50_ms": round(percentile(latencies, 50), 2),
        "ask_p99_ms": round(percentile(latencies, 99), 2),
        "activation_s": round(activation_s, 2),
        "messages": len(stream), "concurrency": args.concurrency,
    }


if __name__ == "__main__":
    main()
