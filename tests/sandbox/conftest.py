"""A real webhook receiver on a loopback port, so deliveries cross an actual socket."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator

import pytest
import uvicorn
from sandbox_receiver import Receiver, ReceiverServer
from starlette.applications import Starlette
from starlette.routing import Route

from tests.polling import started


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@pytest.fixture(scope="session")
async def receiver_server() -> AsyncIterator[ReceiverServer]:
    state = ReceiverServer()
    app = Starlette(routes=[Route("/hooks/{rest:path}", state.handle, methods=["POST"])])
    server = _Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    port = await started(server, task)
    state.base_url = f"http://127.0.0.1:{port}"
    yield state
    server.should_exit = True
    await task


@pytest.fixture
def receiver(receiver_server: ReceiverServer) -> Receiver:
    return Receiver(receiver_server)
