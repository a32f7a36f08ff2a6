"""Bounded waits for tests: every poll has a deadline and names what it waited for, so a
condition that never holds fails its test instead of hanging the suite."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvicorn

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 90.0,
                     interval: float = 0.1, what: str = "condition") -> T:
    """The first truthy value `check` returns; AssertionError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)



async def settled(check: Callable[[], Awaitable[object]], *, what: str,
                  bound: float = 30.0) -> float:
    """Seconds until `check` holds, printed for the run's log: the product's "within a second"
    claims are measured, not asserted (the bound only ends a broken wait)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await eventually(check, timeout=bound, interval=0.02, what=what)
    took = loop.time() - start
    print(f"{what}: {took * 1000:.0f} ms")
    return took

async def started(server: uvicorn.Server, task: asyncio.Task[None], timeout: float = 30.0) -> int:
    """The port of a uvicorn server started as `task`, once it listens (uvicorn exposes a flag,
    not an event); the server's own error if it stopped first."""

    async def listening() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the server stopped before it started")
        return bool(server.started)

    await eventually(listening, timeout=timeout, interval=0.01, what="server started")
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port
