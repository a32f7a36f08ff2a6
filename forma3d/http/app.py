"""The Starlette application: health, /api/v1 (API-key protected) and its OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import forma3d.http.routes.all  # noqa: F401  (registers every route module)
from forma3d import __version__, logs
from forma3d.config import Settings, settings
from forma3d.db.pool import create_pool
from forma3d.http.auth import AuthState
from forma3d.http.deps import Deps
from forma3d.http.middleware import AuthMiddleware, RequestIdMiddleware
from forma3d.http.problems import EXCEPTION_HANDLERS
from forma3d.http.routes import health
from forma3d.http.routes.api import API_PREFIX, api
from forma3d.http.routing import PROBLEM_RESPONSE, path_parameter
from forma3d.http.storefront import StorefrontCors
from forma3d.http.webhooks import routes as webhook_routes
from forma3d.integrations import signatures

if TYPE_CHECKING:
    from actors.runtime import Runtime

OPENAPI_PATH = "/openapi.json"


STATIC = Path(__file__).with_name("static")
"""The operator dashboard: ES modules and one stylesheet, no build step (docs/dashboard.md)."""


async def dashboard(request: Request) -> Response:
    """The dashboard's shell; its modules come from /static, never from a CDN."""
    return HTMLResponse((STATIC / "index.html").read_text(),
                        headers={"Cache-Control": "no-cache"})


def _header(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": {"type": "string"}}


_SIGNED = "Signed, not authenticated by API key: a bad signature answers 401 and stores nothing."
_WEBHOOKS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "shopify": ("Shopify webhook (orders/create, orders/updated, orders/cancelled, ...)", [
        _header(signatures.SHOPIFY_HMAC_HEADER, "base64 HMAC-SHA256 of the raw body with the "
                "tenant's Shopify webhook secret", required=True),
        _header("X-Shopify-Topic", "the event, e.g. orders/create", required=True),
        _header("X-Shopify-Webhook-Id", "the delivery's id (or X-Shopify-Event-Id): a replay "
                "with the same id changes nothing"),
        _header("X-Shopify-Event-Id", "the event's id, preferred over X-Shopify-Webhook-Id"),
    ]),
    "simplyprint": ("SimplyPrint webhook (job and queue events)", [
        _header(name, "the tenant's SimplyPrint webhook secret (either header)")
        for name in signatures.SIMPLYPRINT_SECRET_HEADERS]),
    "sendcloud": ("Sendcloud webhook (parcel status changes)", [
        _header(signatures.SENDCLOUD_SIGNATURE_HEADER, "hex HMAC-SHA256 of the raw body with "
                "the tenant's Sendcloud signing key", required=True)]),
}


def webhook_paths() -> dict[str, Any]:
    """The webhook endpoints, for the OpenAPI document (they are served beside /api/v1)."""
    accepted = {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate"]}}}
    paths: dict[str, Any] = {}
    for source, (summary, headers) in _WEBHOOKS.items():
        paths[f"/webhooks/{{tenant_id}}/{source}"] = {"post": {
            "summary": summary, "description": f"{_SIGNED} Stored raw, then processed.",
            "tags": ["webhooks"], "operationId": f"{source}_webhook", "security": [],
            "parameters": [path_parameter("tenant_id"), *headers],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object"}}}},
            "responses": {"200": {"description": "stored (or a replay of a stored delivery)",
                                  "content": {"application/json": {"schema": accepted}}},
                          "default": PROBLEM_RESPONSE}}}
    return paths


async def openapi(request: Request) -> Response:
    return JSONResponse(api.openapi("Forma3D API", __version__, prefix=API_PREFIX,
                                    extra_paths=webhook_paths()))


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
        app.state.deps = found = Deps(pool, redis, _connect_runtime(cfg),
                                      auth=AuthState(platform_key=cfg.platform_key),
                                      public_url=cfg.public_url)
        watcher = asyncio.create_task(found.integrations.watch(cfg.database_url))
        try:
            yield
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await pool.close()
            await redis.aclose()

    def current() -> Deps:
        found: Deps = app.state.deps
        return found

    api_app = Starlette(routes=[*api.routes(), Route(OPENAPI_PATH, openapi)],
                        exception_handlers=EXCEPTION_HANDLERS)
    api_app.add_middleware(AuthMiddleware, deps=current,
                           public=(("GET", OPENAPI_PATH), *api.public_routes()))
    # Outside the key check: a storefront's CORS preflight carries no key.
    api_app.add_middleware(StorefrontCors, pool_of=lambda: current().pool)
    app = Starlette(
        routes=[Route("/", dashboard), Mount("/static", StaticFiles(directory=STATIC)),
                Route("/health/live", health.live),
                Route("/health/ready", health.ready),
                *webhook_routes, Mount(API_PREFIX, app=api_app)],
        middleware=[Middleware(RequestIdMiddleware, echo=not _behind_serve())],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    api_app.state = app.state  # one state for both: handlers read request.app.state.deps
    if deps is not None:
        app.state.deps = deps
    return app


def _behind_serve() -> bool:
    """True in a Ray Serve replica, whose HTTP server echoes X-Request-ID itself."""
    import sys

    if "ray" not in sys.modules:  # never imported: certainly not a replica
        return False
    from ray.serve import context

    return context._get_internal_replica_context() is not None  # type: ignore[no-untyped-call]


def _connect_runtime(cfg: Settings) -> Runtime | None:
    import ray

    from actors.runtime import connect_runtime

    if not ray.is_initialized():
        return None
    cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
    return connect_runtime(cfg.resolved_entity_hosts(cpus),
                           cfg.ask_timeout_seconds)
