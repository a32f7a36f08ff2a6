"""The Starlette application: health, /api/v1 (API-key protected) and its OpenAPI document."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route

import forma3d.http.routes.all  # noqa: F401  (registers every route module)
from forma3d import __version__, logs
from forma3d.config import Settings, settings
from forma3d.db.pool import create_pool
from forma3d.http.deps import Deps
from forma3d.http.middleware import ApiKeyMiddleware, RequestIdMiddleware
from forma3d.http.problems import EXCEPTION_HANDLERS
from forma3d.http.routes import health
from forma3d.http.routes.api import API_PREFIX, api
from forma3d.http.webhooks import routes as webhook_routes

if TYPE_CHECKING:
    from actors.runtime import Runtime

OPENAPI_PATH = "/openapi.json"


DASHBOARD = Path(__file__).with_name("static") / "dashboard.html"


async def dashboard(request: Request) -> Response:
    """The operator dashboard: a static page over the REST API and the live stream."""
    return HTMLResponse(DASHBOARD.read_text())


async def openapi(request: Request) -> Response:
    return JSONResponse(api.openapi("Forma3D API", __version__, prefix=API_PREFIX))


def build_app(deps: Deps | None = None, config: Settings | None = None) -> Starlette:
    """The app for a Serve replica (deps built at start-up) or a test (deps passed in)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if deps is not None:
            yield
            return
        cfg = config or settings()
        logs.configure(cfg.log_level)
        assert cfg.database_url and cfg.redis_url, "DATABASE_URL and REDIS_URL must be resolved"
        pool = await create_pool(cfg.database_url, max_size=10)
        redis = aioredis.from_url(cfg.redis_url)
        app.state.deps = Deps(pool, redis, _connect_runtime(cfg))
        try:
            yield
        finally:
            await pool.close()
            await redis.aclose()

    async def lookup(key: str) -> uuid.UUID | None:
        found: uuid.UUID | None = await app.state.deps.tenant_for_key(key)
        return found

    api_app = Starlette(routes=[*api.routes(), Route(OPENAPI_PATH, openapi)],
                        exception_handlers=EXCEPTION_HANDLERS)
    api_app.add_middleware(ApiKeyMiddleware, lookup=lookup,
                           public=(OPENAPI_PATH, *api.public_paths()))
    app = Starlette(
        routes=[Route("/", dashboard), Route("/health/live", health.live),
                Route("/health/ready", health.ready),
                *webhook_routes, Mount(API_PREFIX, app=api_app)],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    api_app.state = app.state  # one state for both: handlers read request.app.state.deps
    if deps is not None:
        app.state.deps = deps
    return app


def _connect_runtime(cfg: Settings) -> Runtime | None:
    import ray

    from actors.runtime import connect_runtime

    if not ray.is_initialized():
        return None
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    return connect_runtime(cfg.resolved_entity_hosts(cpus),
                           cfg.ask_timeout_seconds)
