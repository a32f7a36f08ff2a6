"""Who is calling: the one authenticated principal of a request, set by the authentication
middleware on the request scope's state (`request.state.principal`).

Audit, outgoing webhooks and permission checks read it here and nowhere else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import HTTPConnection

from forma3d.http.problems import Problem

PrincipalKind = Literal["user", "key", "platform"]
DECLARED: set[str] = set()
"""Every permission a route declares (filled as route modules register): the grantable ones."""


@dataclass(frozen=True)
class Principal:
    """A signed-in user, an API key, or the platform administrator (across tenants).

    `tenant_id` is the tenant the request acts in (None only for a platform request that names
    no tenant); `id` the user's or key's id (None for the platform administrator)."""

    tenant_id: uuid.UUID | None
    kind: PrincipalKind
    id: uuid.UUID | None
    name: str
    permissions: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None  # a cookie session's id (kind "user" signed in by cookie)

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def actor(self) -> str:
        """A short label for logs and audit rows: `user:<id>`, `key:<id>` or `platform`."""
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


def principal_of(request: HTTPConnection) -> Principal | None:
    """The request's principal, or None on a public or unauthenticated path."""
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else None


def require_principal(request: HTTPConnection) -> Principal:
    found = principal_of(request)
    if found is None:
        raise Problem(401, "authentication is required",
                      headers={"WWW-Authenticate": "Bearer"})
    return found
