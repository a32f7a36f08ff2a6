"""One request straight into the ASGI app, answered as soon as the response starts (a stream
such as /live is then cancelled), for walking the whole route table quickly."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.types import ASGIApp, Message


async def first_response(app: ASGIApp, method: str, path: str, headers: dict[str, str],
                         body: bytes = b"", client: str = "127.0.0.1"
                         ) -> tuple[int, dict[str, str]]:
    """The status and headers the app answers with."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": (client, 5000), "server": ("test", 443),
        "headers": [(k.lower().encode(), v.encode()) for k, v in
                    {"content-type": "application/json", **headers}.items()]}
    started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    given = False

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never hangs up by itself
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message)

    task = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    try:
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
        if task.done() and task.exception() is not None and not started.done():
            raise task.exception()  # type: ignore[misc]
        message = started.result()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    headers: dict[str, str] = {}
    for k, v in message["headers"]:  # a repeated header (set-cookie): one value a line
        name = k.decode()
        headers[name] = f"{headers[name]}\n{v.decode()}" if name in headers else v.decode()
    return message["status"], headers
