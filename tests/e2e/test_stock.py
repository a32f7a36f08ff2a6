"""Inventory end to end (Ray runtime, sandboxes on loopback, the HTTP API): an order served from
stock ships without printing, a partly stocked one prints only the rest, and a stock batch
prints on the sandbox farm and puts its units on the shelf."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from forma3d.store.apikeys import create_api_key
from tests.e2e.conftest import Farm

pytestmark = pytest.mark.ray
BENCHY, VASE = "BENCHY-PLA-RED", "VASE-SPIRAL-PLA-WHITE"


async def api(farm: Farm, ingress: str) -> httpx.AsyncClient:
    key = (await create_api_key(farm.pool, farm.tenant_id, "e2e")).key
    return httpx.AsyncClient(base_url=f"{ingress}/api/v1", timeout=30,
                             headers={"Authorization": f"Bearer {key}"})


async def mapping(farm: Farm, sku: str) -> uuid.UUID:
    found: uuid.UUID = await farm.pool.fetchval(
        "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2", farm.tenant_id, sku)
    return found


async def order_jobs(farm: Farm, shopify_id: int) -> list[Any]:
    return list(await farm.pool.fetch(
        "SELECT j.status FROM print_jobs j JOIN orders o ON o.id = j.order_id"
        " WHERE o.tenant_id = $1 AND o.shopify_order_id = $2", farm.tenant_id, shopify_id))


async def test_orders_take_stock_before_printing(farm: Farm, ingress: str) -> None:
    benchy = await mapping(farm, BENCHY)
    async with await api(farm, ingress) as client:
        on = await client.patch("/stock/settings", json={"stock_management_enabled": True})
        assert on.status_code == 200, on.text
        put = await client.post(f"/stock/{benchy}/adjustments",
                                json={"quantity": 3, "reason": "opening count"})
        assert put.status_code == 201, put.text

        served = farm.send_order([(BENCHY, 2)])
        assert (await farm.wait([served], {"FULFILLED", "FAILED"}))[served] == "FULFILLED"
        assert await order_jobs(farm, served) == []  # shipped without printing

        partly = farm.send_order([(BENCHY, 3)])
        assert (await farm.wait([partly], {"FULFILLED", "FAILED"}))[partly] == "FULFILLED"
        assert [j["status"] for j in await order_jobs(farm, partly)] == ["COMPLETED"] * 2

        level = (await client.get(f"/stock/{benchy}")).json()
        assert (level["on_hand"], level["reserved"], level["available"]) == (0, 0, 0)
        ledger = (await client.get("/stock/ledger", params={"sort": "id:asc"})).json()
    assert [(e["entry_type"], e["quantity"]) for e in ledger] == [
        ("ADJUSTED", 3), ("RESERVED", 2), ("CONSUMED", 2), ("RESERVED", 1), ("CONSUMED", 1)]


async def test_a_stock_batch_prints_on_the_farm_and_fills_the_shelf(farm: Farm,
                                                                    ingress: str) -> None:
    vase = await mapping(farm, VASE)
    async with await api(farm, ingress) as client:
        made = await client.post("/stock-batches", json={"mapping_id": str(vase), "units": 2})
        assert made.status_code == 201, made.text
        batch_id = made.json()["id"]
        deadline = asyncio.get_running_loop().time() + 120
        while (batch := (await client.get(f"/stock-batches/{batch_id}")).json())[
                "status"] == "IN_PROGRESS":
            assert asyncio.get_running_loop().time() < deadline, batch
            await asyncio.sleep(0.3)
        assert (batch["status"], batch["units_produced"]) == ("COMPLETED", 2)
        level = (await client.get(f"/stock/{vase}")).json()
        assert (level["on_hand"], level["in_production"]) == (2, 0)
    completed = await farm.pool.fetchval(
        "SELECT count(*) FROM event_log WHERE tenant_id = $1 AND type = 'stock.batch-completed'",
        farm.tenant_id)
    assert completed == 1
