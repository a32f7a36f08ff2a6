"""Claims race in PostgreSQL: many printers for few jobs and few printers for many jobs.

Every printer runs several concurrent claimers (more than its single-writer actor ever would),
and every successful claim is checked against an in-memory model of who holds what: a job held
by two printers, or a printer holding two jobs, fails the test. Jobs are released back to the
queue after each claim, so a few hundred jobs carry thousands of dispatch decisions.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.domain.statemachine import IllegalTransition
from forma3d.store.print_jobs import PrinterBusy, claim, release, set_job_status

MATERIALS = ["PLA", "PETG"]


async def seed(pool: Pool, tenant_id: uuid.UUID, printers: int, jobs: int) -> list[dict[str, Any]]:
    content = uuid.uuid4().bytes
    file_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
            " VALUES ($1, $2, 'race.gcode', $3, 16, $4)", file_id, tenant_id,
            hashlib.sha256(content).hexdigest(), content)
        await conn.executemany(
            """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, copy_number, file_id,
                                       status, priority, position, required_tags)
               VALUES ($1, $2, $3, 'STOCK', 1, $4, 'QUEUED', $5, $6, $7)""",
            [(uuid.uuid4(), tenant_id, f"race:{i}", file_id, i % 3, i,
              [f"material:{MATERIALS[i % 2]}"]) for i in range(jobs)])
        rows = []
        for i in range(printers):
            printer_id = uuid.uuid4()
            await conn.execute("INSERT INTO printers (id, tenant_id, name) VALUES ($1, $2, $3)",
                               printer_id, tenant_id, f"race {i}")
            rows.append({"id": str(printer_id), "online": True, "enabled": True, "ready": True,
                         "state": "operational", "current_job_id": None, "model": "MK4",
                         "nozzle_diameter": "0.4", "tags": [],
                         "materials": [{"type": MATERIALS[i % 2], "color": "black"}]})
    return rows


async def race(pool: Pool, tenant_id: uuid.UUID, printers: list[dict[str, Any]],
               decisions: int, claimers_per_printer: int = 2) -> dict[str, int]:
    holder: dict[Any, str] = {}  # job -> printer currently holding it
    holding: dict[str, Any] = {}  # printer -> job it holds
    counts = {"decisions": 0, "claims": 0, "busy": 0, "empty": 0}

    async def claimer(p: dict[str, Any]) -> None:
        while counts["decisions"] < decisions:
            counts["decisions"] += 1
            try:
                job = await claim(pool, tenant_id, p, page=50)
            except PrinterBusy:
                counts["busy"] += 1
                await asyncio.sleep(0)
                continue
            if job is None:
                counts["empty"] += 1
                await asyncio.sleep(0.001)
                continue
            counts["claims"] += 1
            assert job["id"] not in holder, f"job {job['id']} started on two printers"
            assert p["id"] not in holding, f"printer {p['id']} got two jobs"
            assert job["required_tags"] == [f"material:{p['materials'][0]['type']}"]
            holder[job["id"]] = p["id"]
            holding[p["id"]] = job["id"]
            await asyncio.sleep(0)
            # Forget first, then release in PostgreSQL: nobody can claim it in between.
            del holder[job["id"]], holding[p["id"]]
            assert await release(pool, job["id"], uuid.UUID(p["id"]), "race test")

    await asyncio.gather(*(claimer(p) for p in printers for _ in range(claimers_per_printer)))
    return counts


# Contention is the point of the first case (most decisions are refusals, which are cheap); the
# second is claim-heavy, and every claim and release writes its status event, so it makes fewer
# decisions to stay quick while still claiming thousands of times.
@pytest.mark.parametrize(("printers", "jobs", "decisions"), [(60, 6, 10_000), (4, 300, 2_500)],
                         ids=["many-printers-few-jobs", "few-printers-many-jobs"])
async def test_no_double_starts(db_pool: Pool, tenant_id: uuid.UUID, printers: int,
                                jobs: int, decisions: int) -> None:
    rows = await seed(db_pool, tenant_id, printers, jobs)
    counts = await race(db_pool, tenant_id, rows, decisions=decisions)
    assert counts["decisions"] >= decisions
    assert counts["claims"] > 100  # the race really dispatched, not only refused
    active = await db_pool.fetchval(
        "SELECT count(*) FROM print_jobs WHERE tenant_id = $1 AND status = 'ASSIGNED'",
        tenant_id)
    assert active == 0


async def test_the_schema_refuses_a_second_active_job_per_printer(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    [printer] = await seed(db_pool, tenant_id, 1, 2)
    printer["materials"] = [{"type": "PLA", "color": "black"}, {"type": "PETG", "color": "x"}]
    first = await claim(db_pool, tenant_id, printer)
    assert first is not None and first["printer_id"] == uuid.UUID(printer["id"])
    with pytest.raises(PrinterBusy):
        await claim(db_pool, tenant_id, printer)
    statuses = await db_pool.fetch(
        "SELECT status FROM print_jobs WHERE tenant_id = $1 ORDER BY status", tenant_id)
    assert [r["status"] for r in statuses] == ["ASSIGNED", "QUEUED"]


async def test_two_printers_racing_for_one_job_exactly_one_wins(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    first, second = await seed(db_pool, tenant_id, 2, 1)
    second["materials"] = first["materials"]  # both fit the one job
    won = await asyncio.gather(claim(db_pool, tenant_id, first), claim(db_pool, tenant_id, second))
    [winner] = [w for w in won if w is not None]
    assert winner["status"] == "ASSIGNED"
    [event] = await db_pool.fetch(
        "SELECT data FROM event_log WHERE tenant_id = $1 AND type = 'print-job.status-changed'",
        tenant_id)
    assert event["data"]["print_job_id"] == str(winner["id"])
    assert (event["data"]["previous_status"], event["data"]["new_status"]) == ("QUEUED",
                                                                               "ASSIGNED")
    assert event["data"]["printer_id"] == str(winner["printer_id"])


async def test_release_requeues_only_a_job_its_printer_holds_and_could_not_start(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    [printer] = await seed(db_pool, tenant_id, 1, 1)
    job = await claim(db_pool, tenant_id, printer)
    assert job is not None
    assert not await release(db_pool, job["id"], uuid.uuid4(), "not its printer")
    assert await release(db_pool, job["id"], uuid.UUID(printer["id"]), "farm refused")
    row = await db_pool.fetchrow("SELECT status, printer_id, error FROM print_jobs"
                                 " WHERE id = $1", job["id"])
    assert (row["status"], row["printer_id"], row["error"]) == ("QUEUED", None, "farm refused")
    changes = await db_pool.fetch(
        "SELECT data FROM event_log WHERE tenant_id = $1 AND type = 'print-job.status-changed'"
        " ORDER BY occurred_at, id", tenant_id)
    assert [(c["data"]["previous_status"], c["data"]["new_status"]) for c in changes] == [
        ("QUEUED", "ASSIGNED"), ("ASSIGNED", "QUEUED")]

    job = await claim(db_pool, tenant_id, printer)
    assert job is not None
    async with db_pool.acquire() as conn, conn.transaction():
        assert await set_job_status(conn, job, PrintJobStatus.PRINTING)
    with pytest.raises(IllegalTransition) as refused:
        await release(db_pool, job["id"], uuid.UUID(printer["id"]), "too late")
    assert "PRINTING" in str(refused.value) and "QUEUED" in str(refused.value)
    assert await db_pool.fetchval("SELECT status FROM print_jobs WHERE id = $1",
                                  job["id"]) == "PRINTING"
