"""Typed messages: one frozen model per message, built by the code that sends it.

A message knows its target (`kind` and `key`) and its `type`, so a sender writes
`send(conn, CancelOrder(tenant_id=..., order_id=..., reason=...))` and never spells an envelope.
On the wire (outbox rows, Ray calls) a message travels as an `Envelope` whose payload is the
model's JSON; `parse` turns it back into the model registered for its type.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from forma3d import logs
from forma3d.messaging.envelope import Envelope


class Message(BaseModel):
    """Base of every entity message; subclasses set `kind` (per target) and `type`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[str]
    type: ClassVar[str]
    tenant_id: uuid.UUID

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        message_type = vars(cls).get("type")
        if isinstance(message_type, str):
            known = MESSAGES.get(message_type)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"message type {message_type!r} is taken by {known.__name__}")
            MESSAGES[message_type] = cls

    @property
    def key(self) -> str:
        """The target entity's key within its kind."""
        raise NotImplementedError

    def envelope(self, *, durable: bool = False, message_id: uuid.UUID | str | None = None,
                 ) -> Envelope:
        payload = self.model_dump(mode="json", exclude={"tenant_id"})
        extra: dict[str, Any] = {"message_id": str(message_id)} if message_id else {}
        return Envelope(self.kind, self.key, self.type, str(self.tenant_id), payload,
                        correlation_id=logs.correlation_id.get(), durable=durable, **extra)


MESSAGES: dict[str, type[Message]] = {}


class UnknownMessage(LookupError):
    """An envelope whose type no message model is registered for."""


def parse(envelope: Envelope) -> Message:
    """The typed message an envelope carries (pydantic's ValidationError if it is malformed)."""
    model = MESSAGES.get(envelope.type)
    if model is None:
        raise UnknownMessage(f"no message type {envelope.type!r}")
    return model.model_validate({**envelope.payload, "tenant_id": envelope.tenant_id})
