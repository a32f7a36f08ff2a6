"""Queue and printer operations over the REST API: each changes what it says, shows up in the
event log, and the matching endpoint names why each printer does or does not fit."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key
from forma3d.store.print_jobs import claim

pytestmark = pytest.mark.ray
V1 = "/api/v1"


@pytest.fixture
async def client(db_pool: Pool, redis_url: str, ray_runtime: Runtime,
                 tenant_id: uuid.UUID) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    key = (await create_api_key(db_pool, tenant_id, "operator")).key
    transport = httpx.ASGITransport(app=build_app(Deps(db_pool, redis, ray_runtime)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Authorization": f"Bearer {key}"}) as http:
        yield http
    await redis.aclose()


async def jobs(pool: Pool, tenant_id: uuid.UUID, tags: list[list[str]]) -> list[uuid.UUID]:
    content = uuid.uuid4().bytes
    file_id, ids = uuid.uuid4(), [uuid.uuid4() for _ in tags]
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
            " VALUES ($1, $2, 'q.gcode', $3, 16, $4)", file_id, tenant_id,
            hashlib.sha256(content).hexdigest(), content)
        await conn.executemany(
            """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, copy_number, file_id,
                                       status, position, required_tags)
               VALUES ($1, $2, $3, 'STOCK', 1, $4, 'QUEUED', $5, $6)""",
            [(i, tenant_id, f"q:{n}", file_id, n, t)
             for n, (i, t) in enumerate(zip(ids, tags, strict=True))])
    return ids


async def printer(pool: Pool, tenant_id: uuid.UUID, name: str, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"model": "MK4", "nozzle_diameter": 0.4, "state": "operational",
                              "online": True, "enabled": True, "ready": True,
                              "materials": [{"slot": 0, "type": "PLA", "color": "Black"}]} | over
    row = await pool.fetchrow(
        """INSERT INTO printers (id, tenant_id, name, model, nozzle_diameter, state, online,
                                 enabled, ready, materials)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *""",
        uuid.uuid4(), tenant_id, name, values["model"], values["nozzle_diameter"],
        values["state"], values["online"], values["enabled"], values["ready"],
        values["materials"])
    return dict(row.items())


async def queue_order(http: httpx.AsyncClient) -> list[str]:
    answer = await http.get(f"{V1}/print-jobs", params={
        "status.in": "QUEUED", "held": "false", "sort": "priority:desc,position:asc"})
    assert answer.status_code == 200, answer.text
    return [j["id"] for j in answer.json()]


async def test_queue_operations_reorder_hold_cancel_clear_and_log(
        client: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    a, b, c, d = await jobs(db_pool, tenant_id, [["pla"]] * 4)
    s = [str(x) for x in (a, b, c, d)]
    assert await queue_order(client) == s

    assert (await client.post(f"{V1}/print-jobs/{d}/move-to-front")).status_code == 200
    assert await queue_order(client) == [s[3], s[0], s[1], s[2]]
    moved = await client.post(f"{V1}/print-jobs/{a}/reorder", json={"position": 2})
    assert moved.status_code == 200 and moved.json()["position"] == 2
    assert await queue_order(client) == [s[3], s[1], s[0], s[2]]
    bulk = await client.post(f"{V1}/print-jobs/reorder", json={"print_job_ids": [s[2], s[0]]})
    assert bulk.status_code == 200 and [j["id"] for j in bulk.json()] == [s[2], s[0]]
    assert await queue_order(client) == [s[2], s[0], s[3], s[1]]

    paused = await client.post(f"{V1}/print-jobs/{c}/pause")
    assert paused.status_code == 200 and paused.json()["held"] is True
    assert await queue_order(client) == [s[0], s[3], s[1]]
    p = await printer(db_pool, tenant_id, "puller")
    taken = await claim(db_pool, tenant_id, p)  # a held job is never dispatched
    assert taken is not None and taken["id"] == a
    assert (await client.post(f"{V1}/print-jobs/{c}/pause")).status_code == 409
    assert (await client.post(f"{V1}/print-jobs/{c}/resume")).json()["held"] is False

    cancelled = await client.post(f"{V1}/print-jobs/{b}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert (await client.post(f"{V1}/print-jobs/{b}/cancel")).status_code == 409
    assert (await client.post(f"{V1}/print-jobs/{b}/reorder", json={"position": 0})
            ).status_code == 409
    cleared = await client.post(f"{V1}/print-jobs/clear-finished")
    assert cleared.json() == {"cleared": 1}
    assert (await client.post(f"{V1}/print-jobs/clear-finished")).json() == {"cleared": 0}

    log = await client.get(f"{V1}/events", params={"type": "print-job.queue-changed",
                                                   "sort": "occurred_at:asc", "limit": 100})
    assert log.status_code == 200, log.text
    actions = [e["data"]["action"] for e in log.json()]
    assert actions == ["move-to-front", "reorder", "bulk-reorder", "pause", "resume", "cancel",
                       "clear-finished"]
    reorder = log.json()[1]["data"]  # a to place 2: a and b move, d and c stay
    assert reorder["before"] == {s[1]: 2, s[0]: 1} and reorder["after"] == {s[1]: 1, s[0]: 2}


async def test_matching_names_the_reason_for_each_printer(
        client: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    [job] = await jobs(db_pool, tenant_id, [["material:PLA", "nozzle:0.4"]])
    await printer(db_pool, tenant_id, "a-fits")
    await printer(db_pool, tenant_id, "b-offline", online=False, state="offline")
    await printer(db_pool, tenant_id, "c-petg", materials=[{"type": "PETG", "color": "Black"}])
    await printer(db_pool, tenant_id, "d-disabled-dirty", enabled=False, ready=False,
                  nozzle_diameter=0.6)
    answer = await client.get(f"{V1}/print-jobs/{job}/matching")
    assert answer.status_code == 200, answer.text
    verdicts = {p["name"]: (p["matches"], p["reasons"]) for p in answer.json()["printers"]}
    assert verdicts == {"a-fits": (True, []), "b-offline": (False, ["offline"]),
                        "c-petg": (False, ["wrong_material"]),
                        "d-disabled-dirty": (False, ["disabled", "not_ready", "wrong_nozzle"])}
    missing = await client.get(f"{V1}/print-jobs/{uuid.uuid4()}/matching")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_printer_operations_and_audited_force_status(
        client: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    p = await printer(db_pool, tenant_id, "old name", ready=False)
    base = f"{V1}/printers/{p['id']}"
    assert (await client.post(f"{base}/ready")).json()["ready"] is True
    assert (await client.post(f"{base}/disable")).json()["enabled"] is False
    assert (await client.post(f"{base}/enable")).json()["enabled"] is True
    renamed = await client.patch(base, json={"name": "new name", "tags": ["enclosure"]})
    assert renamed.status_code == 200 and renamed.json()["tags"] == ["enclosure"]
    log = await client.get(f"{V1}/events", params={"type": "printer.changed",
                                                   "sort": "occurred_at:asc"})
    changes = [e["data"]["after"] for e in log.json()]
    assert changes == [{"ready": True}, {"enabled": False}, {"enabled": True},
                       {"name": "new name", "tags": ["enclosure"]}]
    assert log.json()[3]["data"]["before"] == {"name": "old name", "tags": []}

    [job] = await jobs(db_pool, tenant_id, [[]])
    forced = await client.post(f"{V1}/print-jobs/{job}/force-status",
                               json={"status": "FAILED", "reason": "bed fire drill"})
    assert forced.status_code == 200 and forced.json()["status"] == "FAILED"
    bad = await client.post(f"{V1}/print-jobs/{job}/force-status", json={"status": "NOPE",
                                                                         "reason": "xyz"})
    assert bad.status_code == 422 or bad.status_code == 400
    audit = await client.get(f"{V1}/events", params={"type": "print-job.force-status"})
    [entry] = audit.json()
    assert entry["data"]["by"] == "api key operator (" + entry["data"]["by"].split("(")[1]
    assert entry["data"]["before"]["status"] == "QUEUED"
    assert entry["data"]["after"] == {"status": "FAILED"}
    assert entry["data"]["reason"] == "bed fire drill"
