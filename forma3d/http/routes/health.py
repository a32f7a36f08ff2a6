"""Liveness and readiness: readiness names each dependency and its status."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forma3d.http.deps import deps


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _check(coro: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(coro, 5.0)
        result = {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
        if isinstance(detail, dict):
            result.update(detail)
        return result
    except Exception as error:
        return {"status": "down", "error": f"{type(error).__name__}: {error}"[:300]}


async def _ray() -> dict[str, Any]:
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Ray is not initialised in this process")
    resources = await asyncio.to_thread(ray.cluster_resources)
    return {"cpus": resources.get("CPU", 0), "nodes": len(await asyncio.to_thread(ray.nodes))}


async def _hosts(request: Request) -> dict[str, Any]:
    runtime = deps(request).require_runtime()
    status = await runtime.status()
    down = [h for h in status["hosts"] if h["status"] != "up"]
    if down or status["dispatcher"]["status"] != "up":
        raise RuntimeError(f"{len(down)} of {len(status['hosts'])} hosts down; "
                           f"dispatcher {status['dispatcher']['status']}")
    return {"hosts": len(status["hosts"]), "entities": sum(h["entities"] for h in status["hosts"]),
            "outbox_pending": status["dispatcher"].get("pending")}


async def ready(request: Request) -> Response:
    d = deps(request)
    names = ["postgres", "redis", "ray", "entity_hosts"]
    checks = await asyncio.gather(
        _check(d.pool.fetchval("SELECT 1")), _check(d.redis.ping()), _check(_ray()),
        _check(_hosts(request)),
    )
    report = dict(zip(names, checks, strict=True))
    healthy = all(c["status"] == "up" for c in checks)
    return JSONResponse({"status": "ready" if healthy else "not_ready", "checks": report},
                        status_code=200 if healthy else 503)
