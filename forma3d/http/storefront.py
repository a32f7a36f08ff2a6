"""CORS for the storefront's routes (the GridFlock quote): a shop's own pages may call them from
the browser with a publishable, quote-only key, and no other site may.

A preflight (OPTIONS, no key) is answered before authentication when its Origin is some
tenant's storefront; the real response names the Origin in Access-Control-Allow-Origin only when
it is the calling tenant's own storefront (the Shopify integration's shop domain, or one of the
tenant setting `gridflock_storefront_origins`). A browser therefore reads a quote only on the
shop the key belongs to. Other routes get no CORS headers at all.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forma3d.db.pool import Pool

STOREFRONT_PATHS = ("/gridflock/quote",)
ALLOWED_HEADERS = "authorization, x-api-key, content-type"
MAX_AGE_SECONDS = "600"
ORIGINS_TTL_SECONDS = 10.0
"""How long a tenant's storefront origins are remembered: a quote costs no query for them."""

PoolOf = Callable[[], Pool]


async def tenant_origins(pool: Pool, tenant_id: uuid.UUID) -> frozenset[str]:
    """The tenant's storefront origins: its Shopify shop domain and the setting's list."""
    row = await pool.fetchrow(
        """SELECT (SELECT config->>'shop_domain' FROM integrations
                   WHERE tenant_id = $1 AND service = 'shopify' AND enabled) AS shop,
                  coalesce(settings->'gridflock_storefront_origins', '[]'::jsonb) AS origins
           FROM tenants WHERE id = $1""", tenant_id)
    if row is None:
        return frozenset()
    found = {str(o).lower().rstrip("/") for o in row["origins"] or []}
    if row["shop"]:
        found.add(f"https://{str(row['shop']).lower()}")
    return frozenset(found)


async def known_origin(pool: Pool, origin: str) -> bool:
    """Whether `origin` is some tenant's storefront (the preflight carries no key)."""
    shop = origin.removeprefix("https://") if origin.startswith("https://") else None
    found = await pool.fetchval(
        """SELECT EXISTS (SELECT 1 FROM integrations WHERE service = 'shopify' AND enabled
                          AND lower(config->>'shop_domain') = $1)
               OR EXISTS (SELECT 1 FROM tenants
                          WHERE settings->'gridflock_storefront_origins' ? $2)""",
        shop, origin)
    return bool(found)


class StorefrontCors:
    """ASGI middleware around the API app (outside the key check, so it sees preflights)."""

    def __init__(self, app: ASGIApp, pool_of: PoolOf,
                 paths: tuple[str, ...] = STOREFRONT_PATHS) -> None:
        self.app = app
        self.pool_of = pool_of
        self.paths = paths
        self._origins: dict[uuid.UUID, tuple[float, frozenset[str]]] = {}

    async def origins(self, tenant_id: uuid.UUID) -> frozenset[str]:
        now = time.monotonic()
        cached = self._origins.get(tenant_id)
        if cached is None or cached[0] < now:
            if len(self._origins) > 10_000:
                self._origins.clear()
            cached = (now + ORIGINS_TTL_SECONDS,
                      await tenant_origins(self.pool_of(), tenant_id))
            self._origins[tenant_id] = cached
        return cached[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].rstrip("/").endswith(self.paths):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin", "").lower().rstrip("/")
        if scope["method"] == "OPTIONS" and headers.get("access-control-request-method"):
            await self._preflight(origin)(scope, receive, send)
            return
        if not origin:
            await self.app(scope, receive, send)
            return

        async def send_allowed(message: Message) -> None:
            if message["type"] == "http.response.start":
                tenant_id = scope.get("state", {}).get("tenant_id")
                extra = [(b"vary", b"Origin")]
                if tenant_id is not None and origin in await self.origins(tenant_id):
                    extra.append((b"access-control-allow-origin", origin.encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_allowed)

    def _preflight(self, origin: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            headers = {"Vary": "Origin"}
            if origin and await known_origin(self.pool_of(), origin):
                headers.update({
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE_SECONDS})
            await Response(status_code=204, headers=headers)(scope, receive, send)
        return answer
