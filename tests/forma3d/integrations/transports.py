"""Transports shared by the client tests."""

from __future__ import annotations

import httpx


class DropAnswer(httpx.AsyncBaseTransport):
    """Lets the app act on the next POST (or GET, for services that act on one), then loses
    its answer, as a dropped connection or a read timeout would: the service did the work, the
    client never heard."""

    def __init__(self, inner: httpx.AsyncBaseTransport,
                 error: type[httpx.TransportError] = httpx.ReadTimeout) -> None:
        self.inner = inner
        self.error = error
        self.drop_next_post = False
        self.drop_next_get = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and self.drop_next_post:
            self.drop_next_post = False
            raise self.error("answer lost", request=request)
        if request.method == "GET" and self.drop_next_get:
            self.drop_next_get = False
            raise self.error("answer lost", request=request)
        return response
