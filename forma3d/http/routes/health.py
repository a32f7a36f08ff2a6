"""Liveness and readiness: readiness names each dependency and its status, and each background
loop (outbox dispatch and relay, scheduler, fleet clock, slicer pool) with its last tick; it
answers 503 while any of them is down or stuck."""

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
    """Up with the check's detail (a detail may say `status: down` itself), or down with the
    error that broke it."""
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
    if down:
        raise RuntimeError(f"{len(down)} of {len(status['hosts'])} hosts down")
    return {"hosts": len(status["hosts"]), "entities": sum(h["entities"] for h in status["hosts"]),
            "outbox_pending": status["dispatcher"].get("pending")}


async def _loops(request: Request) -> dict[str, Any]:
    """Every singleton's loops with their last tick; down names the actors that are sick."""
    actors = await deps(request).require_runtime().loops()
    sick = sorted(name for name, actor in actors.items() if actor["status"] != "up")
    return {"actors": actors, **({"status": "down", "error": f"not ticking: {sick}"}
                                 if sick else {})}


async def ready(request: Request) -> Response:
    d = deps(request)
    names = ["postgres", "redis", "ray", "entity_hosts", "loops"]
    checks = await asyncio.gather(
        _check(d.pool.fetchval("SELECT 1")), _check(d.redis.ping()), _check(_ray()),
        _check(_hosts(request)), _check(_loops(request)),
    )
    report = dict(zip(names, checks, strict=True))
    healthy = all(c["status"] == "up" for c in checks)
    return JSONResponse({"status": "ready" if healthy else "not_ready", "checks": report},
                        status_code=200 if healthy else 503)
