"""Server-sent events for dashboards: the tenant's committed events and printer telemetry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from forma3d.http.deps import deps, tenant_of
from forma3d.http.routes.api import api
from forma3d.messaging.live import events_channel, live_channel

HEARTBEAT_SECONDS = 15.0


@api.route("GET", "/live", "Stream the tenant's events and printer telemetry (text/event-stream)",
           tags=("live",),
           permission="events.read")
async def live(request: Request) -> StreamingResponse:
    tenant = tenant_of(request)
    redis = deps(request).redis

    async def stream() -> AsyncIterator[bytes]:
        pubsub = redis.pubsub()
        await pubsub.subscribe(events_channel(tenant), live_channel(tenant))
        try:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=HEARTBEAT_SECONDS)
                if message is None:
                    yield b": heartbeat\n\n"
                    continue
                kind = "event" if message["channel"].endswith(b":events") else "telemetry"
                yield b"event: " + kind.encode() + b"\ndata: " + message["data"] + b"\n\n"
                await asyncio.sleep(0)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
