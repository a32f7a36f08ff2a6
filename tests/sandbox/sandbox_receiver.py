"""Test helper: a webhook receiver state shared by the sandbox tests (see conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass
class ReceiverServer:
    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)  # path -> answers with 500 left
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.received.append(
            Received(path, {k.lower(): v for k, v in request.headers.items()}, await request.body())
        )
        self.arrived.set()
        if self.failures.get(path, 0) > 0:
            self.failures[path] -= 1
            return JSONResponse({"error": "try again"}, status_code=500)
        return JSONResponse({"ok": True})


class Receiver:
    """One test's view of the shared receiver: its own path prefix, so tests never mix."""

    def __init__(self, server: ReceiverServer) -> None:
        self.server = server
        self.prefix = f"/hooks/{uuid.uuid4().hex}"

    def url(self, name: str) -> str:
        return f"{self.server.base_url}{self.prefix}/{name}"

    def fail(self, name: str, times: int) -> None:
        self.server.failures[f"{self.prefix}/{name}"] = times

    def got(self, name: str) -> list[Received]:
        path = f"{self.prefix}/{name}"
        return [r for r in self.server.received if r.path == path]

    async def wait_for(
        self, name: str, predicate: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Waits (bounded, real seconds) until the deliveries to ``name`` satisfy ``predicate``."""

        async def poll() -> list[Received]:
            while not predicate(self.got(name)):
                self.server.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.server.arrived.wait(), 0.05)
            return self.got(name)

        return await asyncio.wait_for(poll(), timeout)
