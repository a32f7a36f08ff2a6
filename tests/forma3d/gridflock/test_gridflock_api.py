"""The GridFlock API in-process (no Ray): preview, jobs list/get through the query language,
retry only of FAILED jobs (a durable message), plate downloads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from forma3d.db.pool import Pool
from forma3d.domain.tenants import TenantSettings
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key

pytestmark = pytest.mark.db


@pytest.fixture
async def api(db_pool: Pool, redis_url: str, tenant_id: uuid.UUID
              ) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    key = (await create_api_key(db_pool, tenant_id, "test")).key
    transport = httpx.ASGITransport(app=build_app(Deps(db_pool, redis)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1",
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        yield client
    await redis.aclose()


async def test_preview_plans_and_draws_without_io(api: httpx.AsyncClient) -> None:
    r = await api.post("/gridflock/preview", json={
        "width_mm": 523, "depth_mm": 387, "options": {"magnets": True},
        "printer_profile": "bambu-a1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["sku"] == "GRID-523x387-MAG-PUZZLE-A1"
    assert body["plan"]["total_plates"] == 6 and body["plan"]["magnets"] is True
    assert body["svg"].startswith("<svg") and body["svg"].count("<text") == 6


@pytest.mark.parametrize(("body", "field"), [
    ({"width_mm": 523, "depth_mm": 387, "printer_profile": "nope"}, "printer_profile"),
    ({"width_mm": -1, "depth_mm": 387}, "width_mm"),
    ({"width_mm": 523, "depth_mm": 387, "options": {"connector": "glue"}}, "options.connector"),
])
async def test_preview_names_the_bad_field(api: httpx.AsyncClient, body: dict[str, object],
                                           field: str) -> None:
    r = await api.post("/gridflock/preview", json=body)
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text


@pytest.mark.parametrize(("width", "depth", "field", "limit"), [
    (1200, 500, "width_mm", "outside the allowed range 100 to 1000 mm"),  # the tenant's limit
    (500, 99, "depth_mm", "outside the allowed range 100 to 1000 mm"),
    (10_000, 10_000, "width_mm", "1200"),  # the platform's ceiling, refused by the schema
])
async def test_preview_refuses_sizes_beyond_the_limits_naming_them(
        api: httpx.AsyncClient, width: float, depth: float, field: str, limit: str) -> None:
    r = await api.post("/gridflock/preview", json={"width_mm": width, "depth_mm": depth})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text and limit in r.text


async def test_preview_follows_the_tenants_limits_up_to_the_ceiling(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    """The largest allowed drawer is planned; the ceiling is also the settings' maximum."""
    assert (await api.post("/gridflock/preview", json={
        "width_mm": 1000, "depth_mm": 1000, "printer_profile": "bambu-a1-mini"})).status_code == 200
    await db_pool.execute("UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2"
                          " WHERE id = $1", tenant_id, {"gridflock_max_mm": 1200})
    r = await api.post("/gridflock/preview", json={
        "width_mm": 1200, "depth_mm": 986, "printer_profile": "bambu-a1-mini"})
    assert r.status_code == 200, r.text
    assert r.json()["plan"]["total_plates"] > 40
    with pytest.raises(ValueError, match="1200"):
        TenantSettings(gridflock_max_mm=1201)


async def insert_job(db_pool: Pool, tenant_id: uuid.UUID, status: str, plates: list[object]
                     ) -> uuid.UUID:
    job_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO gridflock_jobs (id, tenant_id, sku, printer_profile, status, plan, plates)"
        " VALUES ($1, $2, $3, 'bambu-a1', $4, '{}'::jsonb, $5)",
        job_id, tenant_id, f"GRID-{uuid.uuid4().hex[:6]}", status, plates)
    return job_id


async def test_jobs_list_filter_get_and_retry(api: httpx.AsyncClient, db_pool: Pool,
                                              tenant_id: uuid.UUID) -> None:
    failed = await insert_job(db_pool, tenant_id, "FAILED", [])
    done = await insert_job(db_pool, tenant_id, "COMPLETED", [])
    listed = (await api.get("/gridflock/jobs", params={"status": "FAILED", "meta": "true"})).json()
    assert listed["total"] == 1 and listed["data"][0]["id"] == str(failed)
    assert (await api.get(f"/gridflock/jobs/{done}")).json()["status"] == "COMPLETED"
    assert (await api.get(f"/gridflock/jobs/{uuid.uuid4()}")).status_code == 404

    assert (await api.post(f"/gridflock/jobs/{done}/retry")).status_code == 409
    r = await api.post(f"/gridflock/jobs/{failed}/retry")
    assert r.status_code == 202 and r.json()["id"] == str(failed)
    sent = await db_pool.fetch("SELECT target_kind, message_type FROM outbox"
                               " WHERE tenant_id = $1", tenant_id)
    assert [(m["target_kind"], m["message_type"]) for m in sent] == [
        ("gridflock", "gridflock.retry")]


async def test_plate_downloads(api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID,
                               tmp_path: Path) -> None:
    stl = tmp_path / "plate.stl"
    stl.write_bytes(b"solid plate\nendsolid plate\n")
    job = await insert_job(db_pool, tenant_id, "SLICING",
                           [{"number": 1, "stl_path": str(stl)}])
    r = await api.get(f"/gridflock/jobs/{job}/plates/1/stl")
    assert r.status_code == 200 and r.content.startswith(b"solid plate")
    assert (await api.get(f"/gridflock/jobs/{job}/plates/1/gcode")).status_code == 404
    assert (await api.get(f"/gridflock/jobs/{job}/plates/2/stl")).status_code == 404
    assert (await api.get(f"/gridflock/jobs/{job}/plates/1/zip")).status_code == 404
