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
from forma3d.http.problems import Problem
from forma3d.store import audit
from forma3d.store.apikeys import key_identity
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


async def actor_of(request: Request) -> Actor:
    """Who made this request: the authenticated principal when one is set, else the API key
    the key middleware resolved (by its hash), else anonymous."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        found_id = getattr(principal, "id", None)
        return Actor(kind=str(principal.kind),  # type: ignore[arg-type]
                     id=None if found_id is None else str(found_id), name=principal.name)
    key_hash = request.scope.get("state", {}).get("api_key_hash")
    found = await key_identity(deps(request).pool, key_hash) if key_hash else None
    if found is None:
        return Actor("anonymous")
    return Actor("key", str(found[0]), found[1])


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
                action=f"{self.method} {self.route}", actor=await actor_of(request),
                target_id=_target(request, answer), method=self.method, route=self.route,
                status=status, command=self.command, before=self.before,
                after=answer,
                request_id=state.get("request_id"),
                client_address=request.client.host if request.client else None))
        except Exception:
            log.exception("could not record the audit row of %s %s", self.method, self.route)
