"""Queue operations over HTTP, asked of in-process entities (LocalEntities): each answers the
job as it is now, refusals are problem documents, and the owner writes the audit trail."""

from __future__ import annotations

import uuid

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant

pytestmark = pytest.mark.db
V1 = "/api/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
async def http(api: httpx.AsyncClient, api_key: str) -> httpx.AsyncClient:
    api.headers["Authorization"] = f"Bearer {api_key}"
    return api


async def jobs(pool: Pool, tenant_id: uuid.UUID, statuses: list[str],
               order_id: uuid.UUID | None = None) -> list[uuid.UUID]:
    file_id, ids = uuid.uuid4(), [uuid.uuid4() for _ in statuses]
    await pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
        " VALUES ($1, $2, 'q.gcode', $3, 2, 'G1')", file_id, tenant_id, uuid.uuid4().hex)
    await pool.executemany(
        """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, order_id, copy_number,
                                   file_id, status, position)
           VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)""",
        [(i, tenant_id, f"q:{i}", "ORDER" if order_id else "STOCK", order_id, file_id, s, n)
         for n, (i, s) in enumerate(zip(ids, statuses, strict=True))])
    return ids


async def queue_order(http: httpx.AsyncClient) -> list[str]:
    answer = await http.get(f"{V1}/print-jobs", params={
        "status": "QUEUED", "held": "false", "sort": "position:asc"})
    return [j["id"] for j in answer.json()]


async def test_queue_operations_answer_the_job_and_refuse_as_problems(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    a, b, c, done = await jobs(db_pool, tenant_id, ["QUEUED", "QUEUED", "QUEUED", "COMPLETED"])
    s = [str(x) for x in (a, b, c)]

    front = await http.post(f"{V1}/print-jobs/{c}/move-to-front")
    assert front.status_code == 200 and front.json()["position"] == 0
    moved = await http.post(f"{V1}/print-jobs/{c}/reorder", json={"position": 1})
    assert moved.json()["position"] == 1 and await queue_order(http) == [s[0], s[2], s[1]]
    bulk = await http.post(f"{V1}/print-jobs/reorder", json={"print_job_ids": [s[1], s[0]]})
    assert [j["id"] for j in bulk.json()] == [s[1], s[0]]
    assert await queue_order(http) == [s[1], s[0], s[2]]

    paused = await http.post(f"{V1}/print-jobs/{a}/pause")
    assert paused.status_code == 200 and paused.json()["held"] is True
    again = await http.post(f"{V1}/print-jobs/{a}/pause")
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["detail"] == f"print job {a} is already paused"
    assert (await http.post(f"{V1}/print-jobs/{a}/resume")).json()["held"] is False

    stray = await http.post(f"{V1}/print-jobs/reorder", json={"print_job_ids": [str(done)]})
    assert stray.status_code == 409 and str(done) in stray.json()["detail"]
    finished = await http.post(f"{V1}/print-jobs/{done}/reorder", json={"position": 0})
    assert finished.status_code == 409 and "only queued jobs move" in finished.json()["detail"]
    missing = await http.post(f"{V1}/print-jobs/{uuid.uuid4()}/pause")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert (await http.post(f"{V1}/print-jobs/clear-finished")).json() == {"cleared": 1}
    assert (await http.post(f"{V1}/print-jobs/clear-finished")).json() == {"cleared": 0}

    log = await http.get(f"{V1}/events", params={"type": "print-job.queue-changed",
                                                  "sort": "occurred_at:asc,id:asc"})
    assert [e["data"]["action"] for e in log.json()] == [
        "move-to-front", "reorder", "bulk-reorder", "pause", "resume", "clear-finished"]


async def test_stock_jobs_are_cancelled_and_forced_by_the_tenant(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    queued, other = await jobs(db_pool, tenant_id, ["QUEUED", "QUEUED"])
    cancelled = await http.post(f"{V1}/print-jobs/{queued}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    twice = await http.post(f"{V1}/print-jobs/{queued}/cancel")
    assert twice.status_code == 409
    assert twice.json()["detail"] == f"print job {queued} is CANCELLED; it cannot be cancelled"

    forced = await http.post(f"{V1}/print-jobs/{other}/force-status",
                             json={"status": "FAILED", "reason": "bed fire drill"})
    assert forced.status_code == 200 and forced.json()["status"] == "FAILED"
    same = await http.post(f"{V1}/print-jobs/{other}/force-status",
                           json={"status": "FAILED", "reason": "again"})
    assert same.status_code == 409 and same.json()["detail"].endswith("is already FAILED")
    audit = await http.get(f"{V1}/events", params={"type": "print-job.force-status"})
    [entry] = audit.json()
    assert entry["data"]["by"].startswith("api key test (")
    assert entry["data"]["before"]["status"] == "QUEUED"


async def test_order_jobs_are_refused_before_asking_when_they_cannot_change(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = uuid.uuid4()
    await db_pool.execute("INSERT INTO orders (id, tenant_id, shopify_order_id, name)"
                          " VALUES ($1, $2, 7, '#7')", order_id, tenant_id)
    completed, failed = await jobs(db_pool, tenant_id, ["COMPLETED", "FAILED"], order_id)
    refused = await http.post(f"{V1}/print-jobs/{completed}/cancel")
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"print job {completed} is COMPLETED; it cannot be " \
        "cancelled"
    same = await http.post(f"{V1}/print-jobs/{failed}/force-status",
                           json={"status": "FAILED", "reason": "again"})
    assert same.status_code == 409
    assert await db_pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1",
                                  tenant_id) == 0

    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    stranger = (await create_api_key(db_pool, other, "other")).key
    for path in ("cancel", "pause", "move-to-front"):
        denied = await http.post(f"{V1}/print-jobs/{failed}/{path}",
                                 headers={"Authorization": f"Bearer {stranger}"})
        assert denied.status_code == 404, path


async def test_a_bulk_reorder_naming_another_tenants_jobs_moves_nothing(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    ours = [str(j) for j in await jobs(db_pool, tenant_id, ["QUEUED", "QUEUED"])]
    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    theirs = await jobs(db_pool, other, ["QUEUED", "QUEUED"])
    before = await db_pool.fetch("SELECT id, position, priority, updated_at FROM print_jobs"
                                 " WHERE tenant_id = ANY($1) ORDER BY id", [tenant_id, other])

    for ids in ([str(theirs[1]), str(theirs[0])], [ours[1], str(theirs[0]), ours[0]]):
        refused = await http.post(f"{V1}/print-jobs/reorder", json={"print_job_ids": ids})
        assert refused.status_code in (404, 409), refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert str(theirs[0]) in refused.json()["detail"]
    after = await db_pool.fetch("SELECT id, position, priority, updated_at FROM print_jobs"
                                " WHERE tenant_id = ANY($1) ORDER BY id", [tenant_id, other])
    assert after == before  # neither tenant's queue moved
    assert await db_pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = ANY($1)",
                                  [tenant_id, other]) == 0
