"""Test doubles for the host services: a sender that records instead of delivering."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from forma3d.db.pool import Pool
from forma3d.handlers.services import Services
from forma3d.messaging.message import Message


@dataclass
class StubSender:
    """Records every non-durable message; `delayed` keeps (message, delay) of timers."""

    told: list[Message] = field(default_factory=list)
    delayed: list[tuple[Message, float]] = field(default_factory=list)

    def tell(self, message: Message) -> None:
        self.told.append(message)

    def tell_later(self, message: Message, delay: float) -> None:
        self.delayed.append((message, delay))

    async def tell_many(self, messages: Sequence[Message]) -> int:
        self.told.extend(messages)
        return len(messages)

    def of_type(self, model: type[Message]) -> list[Message]:
        return [m for m in [*self.told, *(d[0] for d in self.delayed)] if isinstance(m, model)]


def stub_services(pool: Pool) -> tuple[Services, StubSender]:
    sender = StubSender()
    return Services(pool=pool, sender=sender), sender
