"""Correlation ids in and out (X-Request-ID), and authentication for /api/v1."""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forma3d import logs
from forma3d.domain.tenants import TenantSettings
from forma3d.http import auth
from forma3d.http.principal import Principal
from forma3d.http.problems import Problem, problem_response
from forma3d.store.security import record_security_event
from forma3d.store.tenants import find_tenant

if TYPE_CHECKING:
    from forma3d.http.deps import Deps

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


class AuthMiddleware:
    """Resolves the caller (API key, platform key or session cookie) to a Principal on the
    request's state, refusing bad credentials (401), a key outside its CIDR allowlist (403), a
    cookie write without its CSRF token (403) and a caller over its rate (429). Which permission
    a route needs is checked by the route table's dispatcher, before the body is read."""

    def __init__(self, app: ASGIApp, deps: Callable[[], Deps],
                 public: tuple[tuple[str, str], ...] = ()) -> None:
        self.app = app
        self.deps = deps
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await self._principal(request)
        except Problem as problem:
            await problem_response(problem, request)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if principal is not None:
            state["principal"] = principal
            if principal.tenant_id is not None:
                state["tenant_id"] = principal.tenant_id
        headers = state.pop("rate_headers", None)
        if headers:
            send = _with_headers(send, headers)
        if principal is None or principal.kind != "platform" or request.method in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:  # every write of the platform administrator is recorded, even a refused one
            await record_security_event(
                self.deps().pool, principal.tenant_id, principal.actor, "platform.request",
                {"method": request.method, "path": request.url.path,
                 "status": status[0] if status else None},
                client=auth.client_address(scope), request_id=state.get("request_id"))

    async def _principal(self, request: Request) -> Principal | None:
        deps = self.deps()
        address = auth.client_address(request.scope)
        await deps.limits.check_address(request, address)
        key = request.headers.get("x-api-key") or ""
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        public = self._public(request)
        # A public route (sign-in, accepting an invitation) ignores a session cookie.
        cookie = None if public else request.cookies.get(auth.SESSION_COOKIE)
        found: tuple[Principal, dict[str, object]] | None
        if key:
            found = await self._key(deps, request, key, address)
        elif cookie:
            found = await self._session(deps, request, cookie)
        elif public:
            return None
        else:
            raise Problem(401, "an API key is required", headers={"WWW-Authenticate": "Bearer"})
        if found is None:
            return None
        principal, settings = found
        await deps.limits.check_principal(request, principal, _settings(settings))
        return principal

    def _public(self, request: Request) -> bool:
        method = "GET" if request.method == "HEAD" else request.method
        path = request.scope["path"]
        return any(method == m and path.endswith(p) for m, p in self.public)

    async def _key(self, deps: Deps, request: Request, key: str,
                   address: str) -> tuple[Principal, dict[str, object]]:
        if auth.is_platform_key(deps.auth.platform_key, key):
            principal = auth.platform_principal(request.headers.get(auth.PLATFORM_TENANT_HEADER))
            if principal.tenant_id is not None and await find_tenant(
                    deps.pool, str(principal.tenant_id)) is None:
                raise Problem(404, f"tenant {principal.tenant_id} not found")
            return principal, {}
        record = await deps.auth.key(deps.pool, deps.redis, key)
        if record is None:
            raise Problem(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
        principal = auth.key_principal(record, address)
        await deps.auth.touch(deps.pool, record.id)
        return principal, record.tenant_settings

    async def _session(self, deps: Deps, request: Request, cookie: str
                       ) -> tuple[Principal, dict[str, object]] | None:
        session = await auth.find_session(deps.redis, deps.auth.sessions, cookie)
        found = None if session is None else await deps.auth.user(
            deps.pool, deps.redis, session.user_id)
        if session is None or found is None:
            raise Problem(401, "the session has ended; sign in again")
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
                request.headers.get(auth.CSRF_HEADER, "").encode(), session.csrf.encode()):
            raise Problem(403, f"a cookie-authenticated write needs the {auth.CSRF_HEADER} "
                          "header (the session's CSRF token)")
        return auth.user_principal(found, cookie), found.tenant_settings


def _settings(raw: dict[str, object]) -> TenantSettings | None:
    try:
        return TenantSettings.model_validate(raw)
    except ValidationError:
        return None  # the defaults; a tenant's own settings are checked where they are written


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _with_headers(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *headers]
        await send(message)
    return sending
