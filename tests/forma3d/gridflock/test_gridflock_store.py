"""GridFlock job status changes in forma3d.store.gridflock, against PostgreSQL: each checks the
machine, updates only from the status its writer saw, and writes its events in the caller's
transaction."""

from __future__ import annotations

import uuid

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.gridflock.sku import parse_sku
from forma3d.domain.gridflock.states import GridflockJobStatus, GridflockStep
from forma3d.domain.statemachine import IllegalTransition
from forma3d.store import gridflock as store

pytestmark = pytest.mark.db
SKU = "GRID-300x200-MAG-PUZZLE-A1"


async def requested(pool: Pool, tenant_id: uuid.UUID) -> store.GridflockJob:
    async with pool.acquire() as conn, conn.transaction():
        return await store.request_job(conn, tenant_id, parse_sku(SKU))


async def events(pool: Pool, tenant_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch("SELECT type FROM event_log WHERE tenant_id = $1 ORDER BY id",
                            tenant_id)
    return [r["type"] for r in rows]


async def test_a_job_is_requested_once_with_its_run_message_and_event(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    first = await requested(db_pool, tenant_id)
    again = await requested(db_pool, tenant_id)
    assert again == first and first.status == GridflockJobStatus.PENDING
    assert first.plan["total_plates"] == 2 and first.printer_profile == "bambu-a1"
    runs = await db_pool.fetch("SELECT target_key, payload FROM outbox WHERE tenant_id = $1"
                               " AND message_type = 'gridflock.run'", tenant_id)
    assert [(r["target_key"], r["payload"]["job_id"]) for r in runs] == [
        (f"{tenant_id}:{SKU}", str(first.id))]
    assert await events(db_pool, tenant_id) == ["gridflock.job-status-changed"]


async def test_each_step_moves_one_forward_and_keeps_what_it_made(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    job = await requested(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        job = await store.advance(conn, job)
        job = await store.advance(conn, job, plates=[{"number": 1}], stl_runs=2)
        job = await store.advance(conn, job, stl_runs=1, slice_runs=2)
    assert job.status == GridflockJobStatus.UPLOADING
    assert (job.plates, job.stl_runs, job.slice_runs) == ([{"number": 1}], 3, 2)
    assert await db_pool.fetchval("SELECT started_at IS NOT NULL FROM gridflock_jobs"
                                  " WHERE id = $1", job.id)


@pytest.mark.parametrize(("status", "change", "words"), [
    ("GENERATING_STL", "complete", "GENERATING_STL -> COMPLETED"),
    ("SLICING", "retry", "SLICING -> PENDING"),
    ("COMPLETED", "fail", "COMPLETED -> FAILED"),
    ("FAILED", "fail", "FAILED -> FAILED"),
])
async def test_an_illegal_change_names_both_states_and_writes_nothing(
        db_pool: Pool, tenant_id: uuid.UUID, status: str, change: str, words: str) -> None:
    job = await requested(db_pool, tenant_id)
    await db_pool.execute("UPDATE gridflock_jobs SET status = $2 WHERE id = $1", job.id, status)
    async with db_pool.acquire() as conn, conn.transaction():
        job = await store.find_job(conn, tenant_id, SKU)  # type: ignore[assignment]
        with pytest.raises(IllegalTransition, match=words):
            if change == "complete":
                await store.complete(conn, job, uuid.uuid4(), existing_mapping=False)
            elif change == "retry":
                await store.retry(conn, job)
            else:
                await store.fail(conn, job, GridflockStep.SLICING, "x")
    assert (await db_pool.fetchval("SELECT status FROM gridflock_jobs WHERE id = $1",
                                   job.id)) == status
    assert await events(db_pool, tenant_id) == ["gridflock.job-status-changed"]


async def test_a_job_past_its_last_step_has_no_next_one(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    job = await requested(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        for _ in range(4):
            job = await store.advance(conn, job)
        assert job.status == GridflockJobStatus.MAPPING
        with pytest.raises(ValueError, match="complete"):
            await store.advance(conn, job)


async def test_a_stale_writer_stops_at_its_first_write(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    """Two runners saw PENDING; the second finds the job moved on and changes nothing."""
    seen = await requested(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        await store.advance(conn, seen)
    async with db_pool.acquire() as conn, conn.transaction():
        with pytest.raises(store.JobMoved, match="no longer PENDING"):
            await store.advance(conn, seen)
        with pytest.raises(store.JobMoved):
            await store.fail(conn, seen, GridflockStep.GENERATING_STL, "late")
    job = await store.find_job(db_pool, tenant_id, SKU)
    assert job is not None and job.status == GridflockJobStatus.GENERATING_STL
    assert job.failed_step is None
    assert await events(db_pool, tenant_id) == ["gridflock.job-status-changed"] * 2


async def test_the_events_belong_to_the_callers_transaction(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    job = await requested(db_pool, tenant_id)
    with pytest.raises(RuntimeError, match="after the change"):
        async with db_pool.acquire() as conn, conn.transaction():
            await store.fail(conn, job, GridflockStep.GENERATING_STL, "openscad broke")
            raise RuntimeError("after the change")
    assert (await store.find_job(db_pool, tenant_id, SKU)) == job
    assert await events(db_pool, tenant_id) == ["gridflock.job-status-changed"]


async def test_failing_and_retrying_record_the_step_and_tell_the_tenant(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    job = await requested(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        job = await store.advance(conn, job)
        failed = await store.fail(conn, job, GridflockStep.GENERATING_STL, "x" * 3000)
        retried = await store.retry(conn, failed)
    assert (failed.failed_step, len(failed.error or "")) == (GridflockStep.GENERATING_STL, 2000)
    assert (retried.status, retried.attempts, retried.failed_step, retried.error) == (
        GridflockJobStatus.PENDING, 1, None, None)
    assert await events(db_pool, tenant_id) == [
        "gridflock.job-status-changed", "gridflock.job-status-changed",
        "gridflock.job-status-changed", "gridflock.pipeline-failed",
        "gridflock.job-status-changed"]
    told = await db_pool.fetch("SELECT message_type, payload FROM outbox WHERE tenant_id = $1"
                               " ORDER BY id", tenant_id)
    assert [(r["message_type"], r["payload"].get("sku")) for r in told] == [
        ("gridflock.run", SKU), ("mapping.changed", SKU), ("gridflock.run", SKU),
        ("mapping.changed", SKU)]
