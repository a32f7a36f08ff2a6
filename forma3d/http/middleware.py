"""Correlation ids in and out (X-Request-ID), and API-key authentication for /api/v1."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forma3d import logs
from forma3d.http.problems import Problem, problem_response
from forma3d.store.apikeys import hash_key

REQUEST_ID = "x-request-id"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Takes a caller's X-Request-ID (or makes one), logs under it and returns it on every
    response, exactly once.

    Behind Ray Serve's HTTP server (`echo=False`), Serve has already put an X-Request-ID on the
    request and appends it to every response itself; adding ours too sent the header twice."""

    def __init__(self, app: ASGIApp, echo: bool = True) -> None:
        self.app = app
        self.echo = echo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(REQUEST_ID.encode(), b"").decode("latin-1")
        request_id = sent if _SAFE_ID.match(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = logs.correlation_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                name = REQUEST_ID.encode()
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != name]
                headers.append((name, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id if self.echo else send)
        finally:
            logs.correlation_id.reset(token)


TenantLookup = Callable[[str], Awaitable[uuid.UUID | None]]


class ApiKeyMiddleware:
    """Resolves `Authorization: Bearer <key>` (or X-API-Key) to a tenant; 401 otherwise."""

    def __init__(self, app: ASGIApp, lookup: TenantLookup, public: tuple[str, ...] = ()) -> None:
        self.app = app
        self.lookup = lookup
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].endswith(self.public):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        key = request.headers.get("x-api-key") or ""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        tenant_id = await self.lookup(key) if key else None
        if tenant_id is None:
            detail = "invalid API key" if key else "an API key is required"
            response = problem_response(
                Problem(401, detail, headers={"WWW-Authenticate": "Bearer"}), request)
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["tenant_id"] = tenant_id
        state["api_key_hash"] = hash_key(key)  # who acted, for the audit trail (never the key)
        await self.app(scope, receive, send)
