"""The audit trail of API writes: every POST/PUT/PATCH/DELETE on /api/v1 leaves one row naming
its actor, the route and target, the command and the answer (and the entity as it was before,
where the same path has a GET), the outcome's status, the request id and the client address.

`actor_of` is the one place that says who the caller is."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from forma3d.http.deps import deps
from forma3d.http.principal import principal_of
from forma3d.http.problems import Problem
from forma3d.store import audit
from forma3d.store.audit import Actor, AuditEntry

log = logging.getLogger(__name__)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ANSWER_BYTES = 256 * 1024  # a bigger answer is not parsed for the trail


def audited(method: str, path: str, flag: bool | None = None) -> bool:
    """Whether a route is a write the trail records: a write method, unless it is declared a
    read (`audit=False`) or is a list's `/search` (a read sent as POST)."""
    if flag is not None:
        return flag
    return method in WRITE_METHODS and not path.endswith("/search")


def actor_of(request: Request) -> Actor:
    """Who made this request: its authenticated principal, else anonymous (a public route)."""
    principal = principal_of(request)
    if principal is None:
        return Actor("anonymous")
    return Actor(kind=principal.kind, id=None if principal.id is None else str(principal.id),
                 name=principal.name)


def status_of(error: BaseException) -> int:
    if isinstance(error, Problem):
        return error.status
    if isinstance(error, HTTPException):
        return error.status_code
    return 500


def answer_of(response: Response) -> Any:
    """A JSON response's body as data (None for anything else or anything too big)."""
    if not (response.media_type or "").endswith("json"):
        return None
    body = bytes(response.body) if hasattr(response, "body") else b""
    if not body or len(body) > _ANSWER_BYTES:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _target(request: Request, answer: Any) -> str | None:
    """The last `..._id` path parameter, or the new object's id for a creation."""
    ids = [str(v) for k, v in request.path_params.items() if k.endswith("_id")]
    if ids:
        return ids[-1]
    if isinstance(answer, dict) and answer.get("id") is not None:
        return str(answer["id"])
    return None


@dataclass
class WriteTrail:
    """One write as it happens: `before` is read first, `command` set once the body is valid,
    and `finish` appends the row with the outcome."""

    request: Request
    method: str
    route: str
    read_before: Callable[[Request], Awaitable[Any]] | None = None
    command: Any = None
    before: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> None:
        if self.read_before is None:
            return
        try:
            found = await self.read_before(self.request)
        except Exception:  # a missing target: the write itself answers why
            return
        self.before = answer_of(found) if isinstance(found, Response) else found

    async def finish(self, status: int, answer: Any = None) -> None:
        request = self.request
        try:
            state = request.scope.get("state", {})
            tenant = state.get("tenant_id")
            await audit.record(deps(request).pool, AuditEntry(
                tenant_id=tenant if isinstance(tenant, uuid.UUID) else None, category="write",
                action=f"{self.method} {self.route}", actor=actor_of(request),
                target_id=_target(request, answer), method=self.method, route=self.route,
                status=status, command=self.command, before=self.before,
                after=answer,
                request_id=state.get("request_id"),
                client_address=request.client.host if request.client else None))
        except Exception:
            log.exception("could not record the audit row of %s %s", self.method, self.route)
