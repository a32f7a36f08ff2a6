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

    async def listen() -> None:
        async with httpx.AsyncClient(timeout=None) as client, client.stream(
                "GET", f"{ingress}/api/v1/live", headers={"Authorization": f"Bearer {key}"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if any(e.get("type") == "order.ready-for-fulfillment" for e in seen):
                        return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.5)  # subscribed before the order arrives
    order = farm.send_order([("BENCHY-PLA-RED", 1)])
    await asyncio.wait_for(listener, 60)
    types = [e["type"] for e in seen]
    assert types[0] == "order.created"
    assert "print-job.completed" in types
    assert {e["tenant_id"] for e in seen} == {str(farm.tenant_id)}
    assert order
