"""What request handlers need, built once per process (Serve replica or test), and the one way a
request asks an entity: `ask`, which turns an entity's refusal into a problem document."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request

from forma3d.db.pool import Pool
from forma3d.http.auth import AuthState
from forma3d.http.principal import require_principal
from forma3d.http.problems import Problem, refusal
from forma3d.http.ratelimit import RateLimits
from forma3d.messaging.envelope import EntityError
from forma3d.messaging.message import Message
from forma3d.store.integrations import SettingsCache

if TYPE_CHECKING:
    from actors.runtime import Runtime


class Entities(Protocol):
    """Where HTTP writes go: the Ray runtime's router, or `actors.local.LocalEntities`."""

    async def call(self, message: Message, timeout: float | None = None) -> Any: ...


@dataclass
class Deps:
    pool: Pool
    redis: Any
    runtime: Runtime | None = None
    entities: Entities | None = None  # default: the runtime's router
    auth: AuthState = field(default_factory=AuthState)  # key/user caches, session policy
    limits: RateLimits = field(init=False)
    # Where the services reach us (FORMA3D_PUBLIC_URL): connecting registers webhooks there.
    public_url: str | None = None
    integrations: SettingsCache = field(default_factory=SettingsCache)

    def __post_init__(self) -> None:
        if self.entities is None and self.runtime is not None:
            self.entities = self.runtime.router
        self.limits = RateLimits(self.redis)

    def require_runtime(self) -> Runtime:
        if self.runtime is None:
            raise Problem(503, "the entity runtime is not available")
        return self.runtime

    def require_entities(self) -> Entities:
        if self.entities is None:
            raise Problem(503, "the entity runtime is not available")
        return self.entities


def deps(request: Request) -> Deps:
    found: Deps = request.app.state.deps
    return found


def tenant_of(request: Request) -> uuid.UUID:
    """The tenant the request acts in (the platform administrator names one in a header)."""
    tenant_id: uuid.UUID | None = request.scope["state"].get("tenant_id")
    if tenant_id is None:
        raise Problem(400, "this request acts in a tenant: the platform key must name one in "
                      "X-Forma3d-Tenant")
    return tenant_id


def parse_id(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Problem(404, f"{what} {value!r} not found") from None


async def ask(request: Request, message: Message) -> Any:
    """Ask the message's owning entity; its answer, or the problem its refusal maps to."""
    try:
        return await deps(request).require_entities().call(message)
    except EntityError as error:
        problem = refusal(error)
        if problem is None:
            raise
        raise problem from None


async def who(request: Request) -> str:
    """Who asked, in words for a ledger, an event or an audit entry (never a secret): a user by
    name, an API key by name and prefix, or the platform administrator."""
    principal = require_principal(request)
    if principal.kind == "user":
        return f"user {principal.name}"
    if principal.kind == "platform":
        return "platform administrator"
    row = await deps(request).pool.fetchrow(
        "SELECT name, prefix FROM api_keys WHERE id = $1", principal.id)
    return f"api key {row['name']} ({row['prefix']})" if row else f"api key {principal.name}"
