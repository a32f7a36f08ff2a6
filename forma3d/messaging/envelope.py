"""The envelope every entity message travels in."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field
from typing import Any

# The id of the durable message being handled (None for a tell): set by the host around a
# handler, so a handler can name the message that caused a row (e.g. a stock ledger entry).
delivery_id: contextvars.ContextVar[uuid.UUID | None] = contextvars.ContextVar(
    "delivery_id", default=None)


@dataclass(frozen=True)
class Envelope:
    """One message to one entity.

    `durable` messages come from the outbox: their `message_id` is recorded in the handler's
    transaction, so a redelivery changes nothing.
    """

    kind: str
    key: str
    type: str
    tenant_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    correlation_id: str | None = None
    durable: bool = False

    @property
    def address(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True)
class Reply:
    """What a host answers: a value, or an error that names what went wrong."""

    value: Any = None
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class EntityError(RuntimeError):
    """A handler refused or failed a message; carries the handler's error type."""

    def __init__(self, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
