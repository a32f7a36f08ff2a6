"""The GridFlock entity's handlers without Ray, against PostgreSQL: the pipeline end to end with
the real tools through the in-process slicer and uploads to the in-process SimplyPrint
simulator, a failure recorded at its step, the operator's retry, and the existing-mapping
shortcut through an in-process entity host."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from actors.host import EntityHostCore
from forma3d.db.pool import Pool
from forma3d.domain.gridflock import PlanOptions, Plate, PrinterProfile, get_profile, plan_plates
from forma3d.domain.gridflock.profiles import DEFAULT_SLICING, SliceSettings
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock.plates import Kind, LocalSlicer, PlateResult
from forma3d.handlers import gridflock
from forma3d.handlers.order import expand
from forma3d.handlers.services import FarmSessions, Services
from forma3d.handlers.testing import StubSender, stub_services
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.gridflock import RetryPipeline, RunPipeline
from forma3d.store import files, mappings
from forma3d.store import orders as store
from forma3d.store.integrations import save_integration
from sandbox.server import SandboxConfig, build_apps

pytestmark = pytest.mark.db
_ids = itertools.count(int(uuid.uuid4().int % 10**9) * 1000 + 500)
SKU = "GRID-100x100-NOMAG-PUZZLE-A1"
PROPS = {"Width (mm)": "100", "Depth (mm)": "100", "Magnets": "no"}
PLAN = plan_plates(100, 100, get_profile("bambu-a1"), PlanOptions(magnets=False))
SANDBOX = "http://simplyprint.sandbox"


@pytest.fixture
def simplyprint() -> Starlette:
    return build_apps(SandboxConfig(seed=7))[1]


@pytest.fixture
async def gridflock_services(db_pool: Pool, tenant_id: uuid.UUID, tmp_path: Path,
                   simplyprint: Starlette) -> Services:
    """GridFlock on for a tenant whose farm is the simulator, reached over ASGI; the slicer
    runs OpenSCAD and PrusaSlicer here, into an empty cache."""
    await db_pool.execute("UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2"
                          " WHERE id = $1", tenant_id, {"gridflock_enabled": True})
    sp = SandboxConfig().simplyprint
    await save_integration(db_pool, tenant_id, SimplyPrintSettings(
        company_id=sp.company_id, api_key=sp.api_key, webhook_secret=sp.webhook_secret,
        base_url=SANDBOX, files_url=SANDBOX))
    services, _ = stub_services(db_pool)
    services.slicer = LocalSlicer(tmp_path / "cache")
    services.farm = FarmSessions()
    services.farm.transport = httpx.ASGITransport(app=simplyprint)  # type: ignore[assignment]
    return services


async def order(pool: Pool, tenant_id: uuid.UUID, properties: dict[str, str] = PROPS
                ) -> uuid.UUID:
    """An order with one GRID-CUSTOM line item, expanded (as the order entity does)."""
    shopify = ShopifyOrder.model_validate({"id": next(_ids), "name": "#1", "line_items": [
        {"id": next(_ids), "sku": "GRID-CUSTOM", "quantity": 1, "properties": [
            {"name": k, "value": v} for k, v in properties.items()]}]})
    async with pool.acquire() as conn, conn.transaction():
        order_id, _ = await store.insert_order(conn, tenant_id, shopify)
        await expand(conn, tenant_id, order_id)
    return order_id


async def line_item(pool: Pool, order_id: uuid.UUID) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM line_items WHERE order_id = $1", order_id)
    assert row is not None
    return dict(row)


async def settle(state: gridflock.Gridflock) -> str:
    """Ask as the outbox does: refused while running; awaited; then the settled status."""
    message = RunPipeline(tenant_id=state.tenant_id, sku=state.sku)
    with pytest.raises(gridflock.StillRunning):
        await gridflock.run(state, message)
    await state.services.tasks[state.key]
    assert state.key not in state.services.tasks
    return await gridflock.run(state, message)


async def job_events(pool: Pool, tenant_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch("SELECT type, data FROM event_log WHERE tenant_id = $1"
                            " AND subject_type = 'gridflock_job' ORDER BY id", tenant_id)
    return [(r["type"], r["data"]) for r in rows]


def moves(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str | None, str]]:
    return [(d["previous_status"], d["status"]) for t, d in events
            if t == "gridflock.job-status-changed"]


async def outbox(pool: Pool, tenant_id: uuid.UUID, message_type: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT target_key, payload FROM outbox WHERE tenant_id = $1"
                            " AND message_type = $2 ORDER BY id", tenant_id, message_type)
    return [dict(r) for r in rows]


async def test_an_order_for_a_new_size_runs_the_pipeline_and_then_prints(
        gridflock_services: Services, db_pool: Pool, tenant_id: uuid.UUID,
        simplyprint: Starlette) -> None:
    order_id = await order(db_pool, tenant_id)
    assert (await line_item(db_pool, order_id))["status"] == "GENERATING"
    state = await gridflock.load(gridflock_services, f"{tenant_id}:{SKU}")

    assert await settle(state) == "COMPLETED"

    job = await db_pool.fetchrow("SELECT * FROM gridflock_jobs WHERE id = $1", state.job_id)
    assert job is not None and job["failed_step"] is None and job["completed_at"] is not None
    assert job["stl_runs"] == job["slice_runs"] == len(PLAN.plates)
    farm_files = simplyprint.state.sandbox.farm.files
    assert [p["number"] for p in job["plates"]] == [p.number for p in PLAN.plates]
    assert {p["stl_engine"] for p in job["plates"]} == {"manifold"}  # the default engine
    assert all(p["farm_file_id"] in farm_files for p in job["plates"])
    parts = await db_pool.fetch(
        """SELECT mp.quantity, mp.grams, mp.print_profile, pf.filename, pf.estimated_seconds
           FROM mapping_parts mp JOIN print_files pf ON pf.id = mp.file_id
           WHERE mp.mapping_id = $1""", job["mapping_id"])
    assert sorted(p["quantity"] for p in parts) == sorted(p.count for p in PLAN.plates)
    assert all(p["grams"] > 0 and p["estimated_seconds"] > 0 for p in parts)
    assert {p["print_profile"] for p in parts} == {"bambu-a1"}
    assert parts[0]["filename"].startswith(f"{SKU.lower()}-plate")

    events = await job_events(db_pool, tenant_id)
    assert moves(events) == [(None, "PENDING"), ("PENDING", "GENERATING_STL"),
                             ("GENERATING_STL", "SLICING"), ("SLICING", "UPLOADING"),
                             ("UPLOADING", "MAPPING"), ("MAPPING", "COMPLETED")]
    ready = [d for t, d in events if t == "gridflock.mapping-ready"]
    assert ready == [{"sku": SKU, "product_mapping_id": str(job["mapping_id"]),
                      "gridflock_job_id": str(state.job_id), "existing_mapping": False,
                      "order_id": None, "line_item_id": None}]
    assert [m["payload"]["sku"] for m in await outbox(db_pool, tenant_id, "mapping.changed")
            ] == [SKU]

    # The tenant's MappingChanged expands the waiting order again: it prints the plates.
    async with db_pool.acquire() as conn, conn.transaction():
        await expand(conn, tenant_id, order_id)
    item = await line_item(db_pool, order_id)
    assert item["status"] == "PRINTING" and item["mapping_id"] == job["mapping_id"]
    assert item["parts_total"] == PLAN.total_plates


async def test_a_failed_step_is_recorded_and_a_retry_runs_the_job_again(
        gridflock_services: Services, db_pool: Pool, tenant_id: uuid.UUID,
        monkeypatch: pytest.MonkeyPatch) -> None:
    order_id = await order(db_pool, tenant_id)
    state = await gridflock.load(gridflock_services, f"{tenant_id}:{SKU}")
    # The OpenSCAD engine (the fallback a tenant may choose) with OpenSCAD gone.
    await db_pool.execute("UPDATE tenants SET settings = settings || $2 WHERE id = $1",
                          tenant_id, {"gridflock_engine": "openscad"})
    monkeypatch.setenv("OPENSCAD_BIN", "/nonexistent/openscad")

    assert await settle(state) == "FAILED"

    job = await db_pool.fetchrow("SELECT * FROM gridflock_jobs WHERE id = $1", state.job_id)
    assert job is not None and job["failed_step"] == "GENERATING_STL"
    assert "OpenSCAD (/nonexistent/openscad) not found" in job["error"]
    events = await job_events(db_pool, tenant_id)
    assert moves(events)[-1] == ("GENERATING_STL", "FAILED")
    assert events[-2][1]["failed_step"] == "GENERATING_STL"
    failed = [d for t, d in events if t == "gridflock.pipeline-failed"]
    assert [(d["failed_step"], d["error_message"]) for d in failed] == [
        ("GENERATING_STL", job["error"])]
    assert len(await outbox(db_pool, tenant_id, "mapping.changed")) == 1

    # The tenant's MappingChanged expands the order again: held with the step and the error.
    async with db_pool.acquire() as conn, conn.transaction():
        await expand(conn, tenant_id, order_id)
    item = await line_item(db_pool, order_id)
    assert item["status"] == "NEEDS_MAPPING"
    assert item["reason"] == f"GridFlock pipeline for {SKU} failed at GENERATING_STL: " \
                             f"{job['error']}"

    monkeypatch.delenv("OPENSCAD_BIN")
    async with db_pool.acquire() as conn, conn.transaction():
        assert await gridflock.retry(
            state, RetryPipeline(tenant_id=tenant_id, sku=SKU), conn) == "retrying"
    job = await db_pool.fetchrow("SELECT * FROM gridflock_jobs WHERE id = $1", state.job_id)
    assert job is not None and (job["status"], job["attempts"]) == ("PENDING", 1)
    assert job["failed_step"] is None and job["error"] is None
    assert moves(await job_events(db_pool, tenant_id))[-1] == ("FAILED", "PENDING")
    runs = await outbox(db_pool, tenant_id, "gridflock.run")
    assert [r["target_key"] for r in runs] == [state.key] * 2
    assert len(await outbox(db_pool, tenant_id, "mapping.changed")) == 2

    assert await settle(state) == "COMPLETED"
    async with db_pool.acquire() as conn, conn.transaction():
        await expand(conn, tenant_id, order_id)
    assert (await line_item(db_pool, order_id))["status"] == "PRINTING"


async def test_only_a_failed_job_can_be_retried(
        gridflock_services: Services, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await order(db_pool, tenant_id)
    state = await gridflock.load(gridflock_services, f"{tenant_id}:{SKU}")
    async with db_pool.acquire() as conn, conn.transaction():
        with pytest.raises(ValueError, match="illegal transition PENDING -> PENDING"):
            await gridflock.retry(state, RetryPipeline(tenant_id=tenant_id, sku=SKU), conn)


async def test_a_size_without_a_job_has_no_entity(gridflock_services: Services,
                                                  tenant_id: uuid.UUID) -> None:
    with pytest.raises(LookupError, match="no GridFlock job"):
        await gridflock.load(gridflock_services, f"{tenant_id}:{SKU}")


@pytest.fixture
def host(database_url: str, tmp_path: Path) -> Iterator[EntityHostCore]:
    yield EntityHostCore(0, 1, database_url, specs=[gridflock.ENTITY], sender=StubSender(),
                         slicer=LocalSlicer(tmp_path / "cache"))


async def test_a_mapping_made_while_the_job_waited_completes_it_at_once(
        gridflock_services: Services, db_pool: Pool, tenant_id: uuid.UUID,
        host: EntityHostCore) -> None:
    """The entity as a host runs it: RunPipeline is refused retryably while the pipeline runs;
    a mapping made by hand for the SKU meanwhile completes the job without any tool run."""
    order_id = await order(db_pool, tenant_id)
    async with db_pool.acquire() as conn, conn.transaction():
        stored = await files.add_print_file(conn, tenant_id, "hand.gcode", b"G28\n")
        mapping_id = await mappings.create_mapping(conn, tenant_id, mappings.MappingSpec(SKU), [
            mappings.PartSpec("by hand", stored.id, 1, Decimal(5))])
    envelope = RunPipeline(tenant_id=tenant_id, sku=SKU).envelope(durable=True)
    try:
        refused = await host.deliver(envelope)
        assert refused.retryable and refused.error_type == "StillRunning"
        host_services = await host.services()
        task = host_services.tasks.get(envelope.key)
        if task is not None:
            await task
        settled = await host.deliver(envelope)
        assert settled.value == "COMPLETED"
    finally:
        await host.close()

    job = await db_pool.fetchrow("SELECT * FROM gridflock_jobs WHERE tenant_id = $1", tenant_id)
    assert job is not None and job["mapping_id"] == mapping_id and job["stl_runs"] == 0
    events = await job_events(db_pool, tenant_id)
    assert moves(events) == [(None, "PENDING"), ("PENDING", "COMPLETED")]
    assert [d["existing_mapping"] for t, d in events if t == "gridflock.mapping-ready"] == [True]
    async with db_pool.acquire() as conn, conn.transaction():
        await expand(conn, tenant_id, order_id)
    item = await line_item(db_pool, order_id)
    assert item["status"] == "PRINTING" and item["mapping_id"] == mapping_id


class RecordingSlicer:
    """The local slicer, recording the order of its calls; every STL after the first waits
    (bounded) for a slice to be submitted, so a pipeline that slices only after the last STL
    is caught waiting."""

    def __init__(self, inner: LocalSlicer) -> None:
        self.inner = inner
        self.log: list[tuple[str, tuple[int, ...]]] = []
        self.sliced = asyncio.Event()
        self.stl_calls = 0
        self.slicing: list[SliceSettings] = []

    async def run(self, kind: Kind, plates: Sequence[Plate], profile: PrinterProfile | None,
                  engine: GridflockEngine = "manifold",
                  slicing: SliceSettings = DEFAULT_SLICING) -> list[PlateResult]:
        numbers = tuple(p.number for p in plates)
        if kind == "stl":
            self.stl_calls += 1
            if self.stl_calls > 1:
                try:
                    await asyncio.wait_for(self.sliced.wait(), timeout=20)
                except TimeoutError:
                    self.log.append(("no slice started while STLs were made", numbers))
        else:
            self.log.append(("gcode submitted", numbers))
            self.slicing.append(slicing)
            self.sliced.set()
        made = await self.inner.run(kind, plates, profile, engine, slicing)
        self.log.append((f"{kind} done", numbers))
        return made


async def test_slicing_starts_as_soon_as_the_first_plate_exists(
        gridflock_services: Services, db_pool: Pool, tenant_id: uuid.UUID,
        tmp_path: Path) -> None:
    sku = "GRID-300x200-NOMAG-PUZZLE-A1"
    plan = plan_plates(300, 200, get_profile("bambu-a1"), PlanOptions(magnets=False))
    assert len(plan.plates) == 2
    recorder = RecordingSlicer(LocalSlicer(tmp_path / "cache2"))
    gridflock_services.slicer = recorder
    await order(db_pool, tenant_id, {"Width (mm)": "300", "Depth (mm)": "200", "Magnets": "no"})
    state = await gridflock.load(gridflock_services, f"{tenant_id}:{sku}")

    assert await settle(state) == "COMPLETED"

    log = [event for event, _ in recorder.log]
    assert "no slice started while STLs were made" not in log, recorder.log
    first_slice = log.index("gcode submitted")
    last_stl = max(i for i, event in enumerate(log) if event == "stl done")
    assert first_slice < last_stl, recorder.log  # a slice began before the last STL was made
    assert sorted(n for event, ns in recorder.log if event == "gcode submitted"
                  for n in ns) == [1, 2]  # each plate sliced once
    assert recorder.slicing == [SliceSettings(), SliceSettings()]
    job = await db_pool.fetchrow("SELECT * FROM gridflock_jobs WHERE id = $1", state.job_id)
    assert job is not None and job["slice_runs"] == 2 and job["stl_runs"] == 2
