"""Handler tables: which function of an entity's module handles which message type.

An entity is its state (loaded from PostgreSQL when it activates) and a table of plain async
functions, one per message model:
- a *command* changes rows in one transaction: `fn(state, message, conn)`; the host opens the
  transaction and records a durable message's id in it, so a redelivery changes nothing;
- a *step* talks to external services (no transaction may stay open across an HTTP call):
  `fn(state, message)`; it must be idempotent itself, and its message id is recorded after it
  succeeded; `latest_wins` marks snapshot messages (see actors.host);
- a *query* reads: `fn(state, message)`, never writes.
The host (actors) finds the table through an `EntitySpec`; tests call the functions directly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from forma3d.db.pool import Connection
from forma3d.handlers.services import Services
from forma3d.messaging.message import Message

StateT = TypeVar("StateT")
M = TypeVar("M", bound=Message)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class HandlerKind(StrEnum):
    COMMAND = "command"
    STEP = "step"
    QUERY = "query"


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Awaitable[Any]]
    kind: HandlerKind
    message: type[Message]
    latest_wins: bool = False


@dataclass
class Handlers(Generic[StateT]):
    """The message types one entity kind accepts, filled by decorating its functions."""

    table: dict[str, Handler] = field(default_factory=dict)

    def _add(self, message: type[Message], kind: HandlerKind,
             latest_wins: bool = False) -> Callable[[F], F]:
        def mark(fn: F) -> F:
            if message.type in self.table:
                raise TypeError(f"{message.type} already has a handler")
            self.table[message.type] = Handler(fn, kind, message, latest_wins)
            return fn

        return mark

    @classmethod
    def merged(cls, *tables: Handlers[StateT]) -> Handlers[StateT]:
        """One entity's table from several modules' (e.g. the tenant's webhooks and catalog)."""
        merged: Handlers[StateT] = cls()
        for table in tables:
            clash = merged.table.keys() & table.table.keys()
            if clash:
                raise TypeError(f"handled twice: {sorted(clash)}")
            merged.table.update(table.table)
        return merged

    def command(self, message: type[M]) -> Callable[
            [Callable[[StateT, M, Connection], Awaitable[Any]]],
            Callable[[StateT, M, Connection], Awaitable[Any]]]:
        return self._add(message, HandlerKind.COMMAND)

    def step(self, message: type[M], *, latest_wins: bool = False) -> Callable[
            [Callable[[StateT, M], Awaitable[Any]]], Callable[[StateT, M], Awaitable[Any]]]:
        return self._add(message, HandlerKind.STEP, latest_wins)

    def query(self, message: type[M]) -> Callable[
            [Callable[[StateT, M], Awaitable[Any]]], Callable[[StateT, M], Awaitable[Any]]]:
        return self._add(message, HandlerKind.QUERY)


async def _nothing(state: Any) -> None:
    return None


@dataclass(frozen=True)
class EntitySpec(Generic[StateT]):
    """One entity kind: how its state loads (by key) and which handlers it has."""

    kind: str
    load: Callable[[Services, str], Awaitable[StateT]]
    handlers: Handlers[StateT]
    unload: Callable[[StateT], Awaitable[None]] = _nothing
