"""Logical actors: the Entity base class, message handler registration and the kind registry.

An entity is a cache of its PostgreSQL rows with single-writer semantics: its host runs one
message at a time per entity. `command` handlers run inside a transaction that also records
durable message ids; `step` handlers call external services (no transaction may stay open across
an HTTP call), so they must be idempotent themselves, and the message id is recorded after they
succeed; `query` handlers read memory and never write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from forma3d.db.pool import Connection, Pool
from forma3d.handlers.registry import EntitySpec, Handlers
from forma3d.handlers.registry import Handler as RegistryHandler
from forma3d.handlers.registry import HandlerKind as RegistryKind
from forma3d.handlers.services import Services
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.message import Message

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
CommandHandler = Callable[[Any, Envelope, Connection], Awaitable[Any]]
QueryHandler = Callable[[Any, Envelope], Awaitable[Any]]


class HandlerKind(StrEnum):
    COMMAND = "command"
    STEP = "step"
    QUERY = "query"


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Awaitable[Any]]
    kind: HandlerKind
    latest_wins: bool = False


def _marker(message_type: str, kind: HandlerKind,
            latest_wins: bool = False) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__entity_message__ = (message_type, kind, latest_wins)  # type: ignore[attr-defined]
        return fn

    return mark


def command(message_type: str) -> Callable[[CommandHandler], CommandHandler]:
    """A state-changing handler: called as fn(self, envelope, conn) in a transaction."""
    return _marker(message_type, HandlerKind.COMMAND)


def step(message_type: str, *,
         latest_wins: bool = False) -> Callable[[QueryHandler], QueryHandler]:
    """An idempotent handler with external I/O: fn(self, envelope), managing its own writes.

    `latest_wins` marks snapshot messages (a printer's observed state): while the entity is
    busy, at most one waits, and a newer one replaces it, so a backlog can never build.
    """
    return _marker(message_type, HandlerKind.STEP, latest_wins)


def query(message_type: str) -> Callable[[QueryHandler], QueryHandler]:
    """A read-only handler: called as fn(self, envelope), no transaction."""
    return _marker(message_type, HandlerKind.QUERY)


class EntityContext:
    """What a host lends its entities: the database pool and shared per-process services."""

    def __init__(self, pool: Pool, host_index: int) -> None:
        self.pool = pool
        self.host_index = host_index
        self.services: dict[str, Any] = {}


class Entity:
    kind: ClassVar[str]
    handlers: ClassVar[dict[str, Handler]]

    def __init__(self, key: str, ctx: EntityContext) -> None:
        self.key = key
        self.ctx = ctx

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, Handler] = {}
        for base in reversed(cls.__mro__):
            for value in vars(base).values():
                mark = getattr(value, "__entity_message__", None)
                if mark:
                    table[mark[0]] = Handler(value, *mark[1:])
        cls.handlers = table
        if "kind" in vars(cls):
            KINDS[cls.kind] = cls

    async def activate(self) -> None:
        """Load state from PostgreSQL; called before the first message after (re)activation."""

    async def passivate(self) -> None:
        """Called when the entity is idle long enough to leave memory."""


KINDS: dict[str, type[Entity]] = {}

# Transitional: one EntityContext per host process for the entities not yet turned into
# handler modules.
_LEGACY: dict[str, Any] = {}


def legacy_spec(cls: type[Entity]) -> EntitySpec[Entity]:
    """An entity class seen as an EntitySpec, so the host runs both kinds alike."""

    async def load(services: Services, key: str) -> Entity:
        ctx = _LEGACY.get("ctx")
        if ctx is None or ctx.pool is not services.pool:
            ctx = _LEGACY["ctx"] = EntityContext(services.pool, services.host_index)
        entity = cls(key, ctx)
        await entity.activate()
        return entity

    async def unload(entity: Entity) -> None:
        await entity.passivate()

    table: Handlers[Entity] = Handlers()
    for message_type, h in cls.handlers.items():
        table.table[message_type] = RegistryHandler(h.fn, RegistryKind(h.kind.value), Message,
                                                    h.latest_wins, raw=True)
    return EntitySpec(cls.kind, load, table, unload)
