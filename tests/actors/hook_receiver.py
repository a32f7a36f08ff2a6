"""A tenant's webhook endpoint for tests: a Starlette app on its own loopback port that checks
every Standard Webhooks signature with the `standardwebhooks` package and keeps what came."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.polling import started


@dataclass
class Received:
    webhook_id: str
    payload: dict[str, Any]


@dataclass
class HookReceiver:
    secret: str = ""  # set once the subscription exists
    status: int = 204  # what every delivery is answered with
    received: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    attempts: int = 0
    hold: Callable[[dict[str, Any]], bool] | None = None  # hold a delivery open (once)
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        self.attempts += 1
        body = await request.body()
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return Response(status_code=400)
        if self.hold is not None and self.hold(payload):
            self.hold = None
            self.holding.set()
            await self.release.wait()
        if self.status >= 300:
            return Response(status_code=self.status)
        self.received.append(Received(request.headers["webhook-id"], payload))
        return Response(status_code=self.status)

    def firsts(self) -> list[Received]:
        """Each webhook-id's first arrival, in arrival order (at least once: repeats happen)."""
        seen: set[str] = set()
        out = []
        for item in self.received:
            if item.webhook_id not in seen:
                seen.add(item.webhook_id)
                out.append(item)
        return out


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serve(receiver: HookReceiver) -> AsyncIterator[str]:
    """The receiver on a free loopback port; yields its URL."""
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                    lifespan="off"))
    task = asyncio.create_task(server.serve())
    port = await started(server, task)
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        receiver.release.set()
        server.should_exit = True
        await task
