"""Live updates for dashboards: committed events and printer telemetry on per-tenant Redis
channels.

Events are announced with pg_notify inside the transaction that records them, so PostgreSQL
delivers the notice only if that transaction commits; the relay forwards notices to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from forma3d.db.pool import Connection, connect

log = logging.getLogger(__name__)
NOTIFY_CHANNEL = "forma3d_events"


def events_channel(tenant_id: object) -> str:
    return f"forma3d:{tenant_id}:events"


def live_channel(tenant_id: object) -> str:
    """Printer telemetry (published by printer entities, never stored at that rate)."""
    return f"forma3d:{tenant_id}:live"


async def announce(conn: Connection, notice: dict[str, Any]) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, json.dumps(notice))


async def relay(database_url: str, redis_url: str, beat: Callable[[], None] = lambda: None,
                beat_seconds: float = 1.0) -> None:
    """Forward committed event notices to each tenant's Redis channel, forever; `beat` is
    called after each notice and at least every `beat_seconds` while idle (its heartbeat)."""
    redis = aioredis.from_url(redis_url)
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
    listener = await connect(database_url)

    def on_notice(*args: Any) -> None:
        try:
            queue.put_nowait(args[3])
        except asyncio.QueueFull:
            log.warning("live relay is behind; dropping a notice (dashboards will refetch)")

    await listener.add_listener(NOTIFY_CHANNEL, on_notice)
    try:
        while True:
            if listener.is_closed():  # no more notices would come: let the loop restart
                raise ConnectionError("the event listener's connection closed")
            beat()
            payload = None
            with contextlib.suppress(TimeoutError):
                payload = await asyncio.wait_for(queue.get(), beat_seconds)
            if payload is None:
                continue
            tenant = json.loads(payload).get("tenant_id")
            await redis.publish(events_channel(tenant), payload)
    finally:
        await listener.close()
        await redis.aclose()
