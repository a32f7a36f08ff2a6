"""Dashboards see committed events live, through Redis, as server-sent events."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from forma3d.store.apikeys import create_api_key
from tests.e2e.conftest import Farm

pytestmark = pytest.mark.ray


async def test_order_events_stream_to_the_tenants_dashboard(farm: Farm, ingress: str) -> None:
    key = (await create_api_key(farm.pool, farm.tenant_id, "dashboard")).key
    seen: list[dict[str, object]] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with httpx.AsyncClient(timeout=None) as client, client.stream(
                "GET", f"{ingress}/api/v1/live", headers={"Authorization": f"Bearer {key}"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line == ": connected":  # sent once the stream has subscribed
                    subscribed.set()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if any(e.get("type") == "order.ready-for-fulfillment" for e in seen):
                        return

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(subscribed.wait(), 30)
    shopify_id = farm.send_order([("BENCHY-PLA-RED", 1)])
    await asyncio.wait_for(listener, 60)
    types = [e["type"] for e in seen]
    assert types[0] == "order.created"
    assert "print-job.completed" in types
    assert {e["tenant_id"] for e in seen} == {str(farm.tenant_id)}
    order_id = await farm.pool.fetchval(
        "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
        farm.tenant_id, shopify_id)
    orders_seen = {e["subject_id"] for e in seen if e.get("subject_type") == "order"}
    assert orders_seen == {str(order_id)}  # the stream is about this order, and only it
