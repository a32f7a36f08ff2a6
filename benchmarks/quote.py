"""GridFlock quote latency: POST /api/v1/gridflock/quote for 200 random drawer sizes on random
presets and printers, through the whole app in process (API-key check, CORS, settings, preset
and sliced-figures lookups in PostgreSQL, planning, pricing); answers must never wait for
geometry or a slicer.

    .venv/bin/python -m benchmarks.quote [--sizes 200] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import httpx
import redis.asyncio as aioredis

from benchmarks._common import percentile, repeated, services, show
from forma3d.db.pool import create_pool
from forma3d.domain.gridflock import PROFILES
from forma3d.domain.gridflock.presets import Preset
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key
from forma3d.store.gridflock_presets import create_preset
from forma3d.store.tenants import create_tenant

PRICING = {"currency": "EUR", "base": "4.90", "per_cell": "0.35", "per_plate": "1.10",
           "per_magnet": "0.12", "minimum": "9.99"}
STOREFRONT = "https://drawers.example"
PACE_SECONDS = 0.025  # 40 quotes/s, under an API key's default 50 requests/s


async def measure(database_url: str, redis_url: str, sizes: int, seed: int) -> dict[str, Any]:
    pool = await create_pool(database_url, min_size=2, max_size=10)
    redis = aioredis.from_url(redis_url)
    try:
        tenant_id = await create_tenant(pool, f"quote-{uuid.uuid4().hex[:10]}", settings={
            "gridflock_enabled": True, "gridflock_pricing": PRICING, "gridflock_max_mm": 1200,
            "gridflock_storefront_origins": [STOREFRONT]})
        presets = []
        for i, profile in enumerate(PROFILES.values()):
            preset = Preset(name=f"p{i}", printer_profile=profile.id, magnets=i % 2 == 0,
                            magnet_diameter_mm=8 if i % 3 == 0 else 6.5,
                            brim_mm=float(i % 4))
            await create_preset(pool, tenant_id, preset)
            presets.append(preset.name)
        key = (await create_api_key(pool, tenant_id, "storefront")).key
        app = build_app(Deps(pool, redis))
        rng = random.Random(seed)
        times: list[float] = []
        estimates = 0
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench/api/v1",
                                     headers={"Authorization": f"Bearer {key}",
                                              "Origin": STOREFRONT}) as client:
            for warm in range(5):
                await client.post("/gridflock/quote", json={"width_mm": 200 + warm,
                                                            "depth_mm": 200})
            for _ in range(sizes):
                body = {"width_mm": round(rng.uniform(100, 1200) * 2) / 2,
                        "depth_mm": round(rng.uniform(100, 1200) * 2) / 2,
                        "preset": rng.choice(presets)}
                started = time.perf_counter()
                r = await client.post("/gridflock/quote", json=body)
                took = time.perf_counter() - started
                times.append(took * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"quote {body} answered {r.status_code}: {r.text}")
                estimates += r.json()["figures"] == "estimate"
                # A storefront key is rate-limited (its limiter stays in the measured path):
                # quotes are sent at a pace under the limit, as shoppers typing would.
                await asyncio.sleep(max(0.0, PACE_SECONDS - took))
        return {"quotes": sizes, "quote_p50_ms": round(percentile(times, 50), 2),
                "quote_p99_ms": round(percentile(times, 99), 2),
                "quote_max_ms": round(max(times), 2), "estimates": estimates}
    finally:
        await redis.aclose()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with services() as started:
        show(repeated(lambda: asyncio.run(measure(started.database_url, started.redis_url,
                                                  args.sizes, args.seed)), args.repeat),
             args.json)


if __name__ == "__main__":
    main()
