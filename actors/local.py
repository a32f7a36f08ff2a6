"""Entities in this process, without Ray: one `EntityHostCore` behind the same `call` (and `send`)
as the Ray `EntityRouter`, so the HTTP layer (and its tests) can ask entities, and an outbox
dispatcher deliver to them, where no cluster runs.

Non-durable messages the entities send are only recorded (`StubSender`); durable ones stay in the
outbox for a dispatcher, as anywhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from actors.host import EntityHostCore
from forma3d.handlers.registry import EntitySpec
from forma3d.handlers.testing import StubSender
from forma3d.messaging.envelope import EntityError, Envelope, Reply
from forma3d.messaging.message import Message


class LocalEntities:
    """Asks entities hosted in-process; answers and refusals as `EntityRouter.call` gives them."""

    def __init__(self, database_url: str, *, specs: Sequence[EntitySpec[Any]] | None = None,
                 ask_timeout: float = 30.0, pool_size: int = 5) -> None:
        self.sender = StubSender()
        self.core = EntityHostCore(0, 1, database_url, pool_size=pool_size, specs=specs,
                                   sender=self.sender)
        self.ask_timeout = ask_timeout

    async def call(self, message: Message, timeout: float | None = None) -> Any:
        """Ask the message's entity and wait for its answer (EntityError if it refused)."""
        reply = await asyncio.wait_for(self.core.deliver(message.envelope()),
                                       timeout or self.ask_timeout)
        if reply.error is not None:
            raise EntityError(reply.error, reply.error_type)
        return reply.value

    def send(self, envelope: Envelope) -> asyncio.Future[Reply]:
        """The delivery's reply to come, as `EntityRouter.send` gives it (so an outbox dispatcher
        can deliver in this process): it runs on whether or not anyone waits for it."""
        return asyncio.ensure_future(self.core.deliver(envelope))

    async def close(self) -> None:
        await self.core.close()
