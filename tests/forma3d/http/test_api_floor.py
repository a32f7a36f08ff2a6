"""GET /api/v1/floor and GET /api/v1/printers/{id}/matching against real PostgreSQL, on rows
inserted directly: each printer's place on the floor with the job on it, and a printer's side of
matching (why it takes no job now, and which queued jobs its tags fit)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant

pytestmark = pytest.mark.db
V1 = "/api/v1"


async def printer(pool: Pool, tenant_id: uuid.UUID, name: str, **values: Any) -> uuid.UUID:
    row = {"state": "operational", "online": True, "enabled": True, "ready": True,
           "materials": [{"slot": 0, "type": "PLA", "color": "Red"}]} | values
    printer_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO printers (id, tenant_id, name, model, nozzle_diameter, state, online,
                                 enabled, ready, materials)
           VALUES ($1, $2, $3, 'MK4', 0.4, $4, $5, $6, $7, $8)""", printer_id, tenant_id, name,
        row["state"], row["online"], row["enabled"], row["ready"], row["materials"])
    return printer_id


async def job(pool: Pool, tenant_id: uuid.UUID, file_id: uuid.UUID, status: str,
              tags: list[str], position: int, order_id: uuid.UUID | None = None,
              printer_id: uuid.UUID | None = None, held: bool = False) -> uuid.UUID:
    job_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, order_id, copy_number,
                                   file_id, status, position, required_tags, printer_id, held,
                                   started_at)
           VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10, $11,
                   CASE WHEN $7 = 'PRINTING' THEN now() END)""",
        job_id, tenant_id, f"k:{job_id}", "ORDER" if order_id else "STOCK", order_id, file_id,
        status, position, tags, printer_id, held)
    return job_id


@pytest.fixture
async def http(api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> httpx.AsyncClient:
    key = (await create_api_key(db_pool, tenant_id, "viewer", role="viewer")).key
    api.headers["Authorization"] = f"Bearer {key}"
    return api


async def test_floor_places_every_printer_and_shows_the_job_on_it(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    file_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content,"
        " estimated_seconds) VALUES ($1, $2, 'benchy.gcode', $3, 2, 'G1', 5400)",
        file_id, tenant_id, uuid.uuid4().hex)
    order_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO orders (id, tenant_id, shopify_order_id, name, status)"
        " VALUES ($1, $2, 1, '#1042', 'PROCESSING')", order_id, tenant_id)
    busy = await printer(db_pool, tenant_id, "b-busy", state="printing")
    printing = await job(db_pool, tenant_id, file_id, "PRINTING", [], 0, order_id, busy)
    await db_pool.execute("UPDATE printers SET current_job_id = $2 WHERE id = $1", busy, printing)
    await printer(db_pool, tenant_id, "a-dirty", ready=False)
    await printer(db_pool, tenant_id, "c-idle")
    await printer(db_pool, tenant_id, "d-gone", state="offline", online=False)
    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    await printer(db_pool, other, "not mine")

    answer = await http.get(f"{V1}/floor")
    assert answer.status_code == 200, answer.text
    rows = {r["name"]: r for r in answer.json()}
    assert {n: (r["group"], r["why"]) for n, r in rows.items()} == {
        "a-dirty": ("attention", "awaiting bed clear"), "b-busy": ("printing", "printing"),
        "c-idle": ("idle", "ready"), "d-gone": ("offline", "offline")}
    on = rows["b-busy"]["job"]
    assert on["id"] == str(printing) and on["status"] == "PRINTING"
    assert on["order_id"] == str(order_id) and on["order_name"] == "#1042"
    assert on["file_name"] == "benchy.gcode" and on["estimated_seconds"] == 5400
    assert on["started_at"] is not None
    assert rows["a-dirty"]["job"] is None
    assert rows["a-dirty"]["materials"] == [{"slot": 0, "type": "PLA", "color": "Red"}]


async def test_a_printers_matching_names_why_it_takes_no_job_and_which_jobs_fit(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    file_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
        " VALUES ($1, $2, 'vase.gcode', $3, 2, 'G1')", file_id, tenant_id, uuid.uuid4().hex)
    dirty = await printer(db_pool, tenant_id, "dirty", ready=False)
    red = await job(db_pool, tenant_id, file_id, "QUEUED", ["filament:PLA/Red"], 1)
    petg = await job(db_pool, tenant_id, file_id, "QUEUED", ["material:PETG", "nozzle:0.6"], 0)
    await job(db_pool, tenant_id, file_id, "QUEUED", [], 2, held=True)  # held: not offered
    await job(db_pool, tenant_id, file_id, "COMPLETED", [], 3)

    answer = await http.get(f"{V1}/printers/{dirty}/matching")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["name"] == "dirty" and body["available"] is False
    assert body["reasons"] == ["not_ready"] and body["queued"] == 2
    verdicts = {j["print_job_id"]: j for j in body["jobs"]}
    assert list(verdicts) == [str(petg), str(red)]  # queue order: position
    assert verdicts[str(red)]["fits"] is True and verdicts[str(red)]["matches"] is False
    assert verdicts[str(red)]["reasons"] == ["not_ready"]
    assert verdicts[str(petg)]["fits"] is False
    assert verdicts[str(petg)]["missing_tags"] == ["material:PETG", "nozzle:0.6"]
    assert verdicts[str(petg)]["reasons"] == ["not_ready", "wrong_material", "wrong_nozzle"]

    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    stranger = await printer(db_pool, other, "theirs")
    assert (await http.get(f"{V1}/printers/{stranger}/matching")).status_code == 404
