"""Stock over HTTP (in-process entities, real PostgreSQL): levels and the ledger through the
query language, adjustments and scrap as commands with problems for what the shelf or the input
cannot allow, settings, batches with cancel, and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from tests.forma3d.store.stock_fixtures import product

pytestmark = pytest.mark.db
PROBLEM = "application/problem+json"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_adjust_scrap_and_read_levels_and_ledger(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    h = auth(api_key)
    cube = await product(db_pool, tenant_id, "CUBE")
    ball = await product(db_pool, tenant_id, "BALL")
    added = await api.post(f"/api/v1/stock/{cube}/adjustments", headers=h,
                           json={"quantity": 5, "reason": "first count"})
    assert added.status_code == 201, added.text
    assert (added.json()["on_hand"], added.json()["available"]) == (5, 5)
    scrapped = await api.post(f"/api/v1/stock/{cube}/scrap", headers=h,
                              json={"quantity": 2, "reason": "warped"})
    assert scrapped.json()["on_hand"] == 3
    await api.post(f"/api/v1/stock/{ball}/adjustments", headers=h,
                   json={"quantity": 1, "reason": "found one"})

    levels = await api.get("/api/v1/stock", headers=h, params={"available.gt": "1"})
    assert [(r["sku"], r["available"]) for r in levels.json()] == [("CUBE", 3)]
    ledger = await api.get("/api/v1/stock/ledger", headers=h,
                           params={"mapping_id": str(cube), "sort": "id:asc"})
    assert [(e["entry_type"], e["direction"], e["quantity"], e["reason"])
            for e in ledger.json()] == [("ADJUSTED", "IN", 5, "first count"),
                                        ("SCRAPPED", "OUT", 2, "warped")]
    assert ledger.json()[0]["created_by"].startswith("api key test")

    export = await api.get("/api/v1/stock/ledger.csv", headers=h)
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [(r["entry_type"], r["quantity"], r["on_hand_after"]) for r in rows] == [
        ("ADJUSTED", "5", "5"), ("SCRAPPED", "2", "3"), ("ADJUSTED", "1", "1")]

    events = await db_pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1"
                                    " AND type = 'stock.level-changed'", tenant_id)
    assert events == 3


async def test_refusals_are_problems(api: httpx.AsyncClient, api_key: str, db_pool: Pool,
                                     tenant_id: uuid.UUID) -> None:
    h = auth(api_key)
    cube = await product(db_pool, tenant_id, "CUBE")
    too_many = await api.post(f"/api/v1/stock/{cube}/scrap", headers=h,
                              json={"quantity": 1, "reason": "warped"})
    assert too_many.status_code == 409
    assert too_many.headers["content-type"] == PROBLEM
    assert "0 available" in too_many.json()["detail"]
    for body in ({"quantity": 0, "reason": "x"}, {"quantity": 2}, {"quantity": 2, "reason": ""}):
        bad = await api.post(f"/api/v1/stock/{cube}/adjustments", headers=h, json=body)
        assert bad.status_code == 422, body
    missing = await api.post(f"/api/v1/stock/{uuid.uuid4()}/adjustments", headers=h,
                             json={"quantity": 1, "reason": "x"})
    assert missing.status_code == 404
    inverted = await api.patch(f"/api/v1/stock/{cube}", headers=h,
                               json={"minimum": 5, "maximum": 2})
    assert inverted.status_code == 422
    # Another tenant sees none of it.
    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    key = (await create_api_key(db_pool, other, "other")).key
    assert (await api.get(f"/api/v1/stock/{cube}", headers=auth(key))).status_code == 404
    stranger = await api.post(f"/api/v1/stock/{cube}/adjustments", headers=auth(key),
                              json={"quantity": 1, "reason": "x"})
    assert stranger.status_code == 404
    assert (await db_pool.fetchval("SELECT count(*) FROM stock_ledger WHERE mapping_id = $1",
                                   cube)) == 0


async def test_settings_and_batches(api: httpx.AsyncClient, api_key: str, db_pool: Pool,
                                    tenant_id: uuid.UUID) -> None:
    h = auth(api_key)
    cube = await product(db_pool, tenant_id, "CUBE", copies=2)
    assert (await api.get("/api/v1/stock/settings", headers=h)).json()[
        "stock_management_enabled"] is False
    patched = await api.patch("/api/v1/stock/settings", headers=h, json={
        "stock_management_enabled": True, "stock_time_zone": "Europe/Amsterdam"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["stock_management_enabled"] is True
    bad_zone = await api.patch("/api/v1/stock/settings", headers=h,
                               json={"stock_time_zone": "Nowhere/City"})
    assert bad_zone.status_code == 422

    item = await api.patch(f"/api/v1/stock/{cube}", headers=h,
                           json={"minimum": 2, "maximum": 6, "priority": 3, "batch_size": 2})
    assert item.status_code == 200, item.text
    assert (item.json()["minimum"], item.json()["maximum"]) == (2, 6)

    made = await api.post("/api/v1/stock-batches", headers=h,
                          json={"mapping_id": str(cube), "units": 3})
    assert made.status_code == 201, made.text
    batch = made.json()
    assert (batch["status"], batch["units"], batch["origin"]) == ("IN_PROGRESS", 3, "MANUAL")
    jobs = await db_pool.fetch("SELECT status, purpose FROM print_jobs WHERE stock_batch_id = $1",
                               uuid.UUID(batch["id"]))
    assert len(jobs) == 6 and {(j["status"], j["purpose"]) for j in jobs} == {("QUEUED",
                                                                                "STOCK")}
    level = (await api.get(f"/api/v1/stock/{cube}", headers=h)).json()
    assert level["in_production"] == 3
    listed = await api.get("/api/v1/stock-batches", headers=h, params={"status": "IN_PROGRESS"})
    assert listed.status_code == 200, listed.text
    assert [b["id"] for b in listed.json()] == [batch["id"]]

    cancelled = await api.post(f"/api/v1/stock-batches/{batch['id']}/cancel", headers=h,
                               json={"reason": "not needed"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    again = await api.post(f"/api/v1/stock-batches/{batch['id']}/cancel", headers=h, json={})
    assert again.status_code == 409
    statuses = {r["status"] for r in await db_pool.fetch(
        "SELECT status FROM print_jobs WHERE stock_batch_id = $1", uuid.UUID(batch["id"]))}
    assert statuses == {"CANCELLED"}
