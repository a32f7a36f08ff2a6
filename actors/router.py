"""Which host carries an entity (rendezvous hashing) and how callers reach it (tell / ask)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import ray

from forma3d.messaging.envelope import EntityError, Envelope, Reply
from forma3d.messaging.message import Message

NAMESPACE = "forma3d"
HOST_PREFIX = "forma3d-entity-host-"


def host_name(index: int) -> str:
    return f"{HOST_PREFIX}{index}"


def rendezvous(key: str, hosts: int) -> int:
    """Highest-random-weight choice: adding a host moves only the keys it wins (about 1/n)."""
    if hosts < 1:
        raise ValueError("no entity hosts")

    def weight(index: int) -> int:
        digest = hashlib.blake2b(f"{index}|{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return max(range(hosts), key=weight)


class EntityRouter:
    """Sends envelopes to the host that owns the entity; usable from any Ray process."""

    def __init__(self, hosts: list[Any], ask_timeout: float = 30.0) -> None:
        if not hosts:
            raise ValueError("no entity hosts")
        self.hosts = hosts
        self.ask_timeout = ask_timeout

    @classmethod
    def connect(cls, count: int, ask_timeout: float = 30.0) -> EntityRouter:
        hosts = [ray.get_actor(host_name(i), namespace=NAMESPACE) for i in range(count)]
        return cls(hosts, ask_timeout)

    def host_for(self, envelope: Envelope) -> Any:
        return self.hosts[rendezvous(envelope.address, len(self.hosts))]

    def tell(self, envelope: Envelope) -> None:
        """Fire and forget. Use the outbox instead when the message must not be lost."""
        self.host_for(envelope).deliver.remote(envelope)

    def send(self, envelope: Envelope) -> asyncio.Future[Reply]:
        """The delivery's reply to come. The host handles the envelope whether or not anyone
        waits: cancelling the future (or a timeout around it) does not stop the delivery."""
        ref = self.host_for(envelope).deliver.remote(envelope)
        # The concurrent future holds the ObjectRef, so the reply stays until it is read.
        reply: asyncio.Future[Reply] = asyncio.wrap_future(ref.future())
        return reply

    async def deliver(self, envelope: Envelope, timeout: float | None = None) -> Reply:
        return await asyncio.wait_for(self.send(envelope), timeout or self.ask_timeout)

    async def ask(self, envelope: Envelope, timeout: float | None = None) -> Any:
        """Request/response; raises EntityError when the handler failed."""
        reply = await self.deliver(envelope, timeout)
        if reply.error is not None:
            raise EntityError(reply.error, reply.error_type)
        return reply.value

    async def call(self, message: Message, timeout: float | None = None) -> Any:
        """Ask the message's entity and wait for its answer (EntityError if it refused)."""
        return await self.ask(message.envelope(), timeout)
