"""The GridFlock entity: one per tenant and canonical SKU; runs that size's pipeline once.

PENDING -> GENERATING_STL -> SLICING -> UPLOADING -> MAPPING -> COMPLETED, or FAILED with the
step and the error (PENDING -> COMPLETED at once when the SKU has a mapping by then). The
pipeline takes minutes, far longer than a mailbox may be held or the outbox waits for an answer,
so `RunPipeline` only makes sure a background task in this host (`services.tasks`) runs it and
answers "still running" as a retryable refusal: the outbox keeps the message and asks again with
backoff until the job has settled. That redelivery is the crash watchdog: after a host dies, the
next ask activates the entity elsewhere, finds no task and resumes from the persisted step
(finished plates are cache hits, so a resumed step repeats no tool run).

Every step is persisted through forma3d.store.gridflock, whose conditional updates stop a second
runner at its first stale write (`JobMoved`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from forma3d import logs
from forma3d.db.pool import Connection, Pool
from forma3d.domain.gridflock.planner import Plate, PlateSet
from forma3d.domain.gridflock.profiles import PrinterProfile
from forma3d.domain.gridflock.sku import GridRequest, parse_sku
from forma3d.domain.gridflock.states import GRIDFLOCK_JOB_MACHINE, GridflockStep, failed_step
from forma3d.domain.gridflock.states import GridflockJobStatus as S
from forma3d.domain.statemachine import IllegalTransition
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock.plates import Kind, PlateResult, SlicerUnavailable
from forma3d.handlers import farm
from forma3d.handlers.registry import EntitySpec, Handlers
from forma3d.handlers.services import Services, Slicer
from forma3d.integrations.errors import TransientError
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.integrations.simplyprint import SimplyPrintClient
from forma3d.messaging.gridflock import RetryPipeline, RunPipeline
from forma3d.retry import backoff_delay
from forma3d.store import gridflock as store
from forma3d.store.files import add_print_file
from forma3d.store.integrations import load_integration
from forma3d.store.mappings import MappingSpec, PartSpec, create_mapping
from forma3d.store.tenants import tenant_settings

log = logging.getLogger(__name__)
UPLOAD_ATTEMPTS = 4


@dataclass
class Gridflock:
    """One size's entity: which job it runs (its memory beyond that is PostgreSQL)."""

    services: Services
    tenant_id: uuid.UUID
    sku: str
    job_id: uuid.UUID

    @property
    def key(self) -> str:
        return f"{self.tenant_id}:{self.sku}"


async def load(services: Services, key: str) -> Gridflock:
    tenant, _, sku = key.partition(":")
    tenant_id = uuid.UUID(tenant)
    job = await store.find_job(services.pool, tenant_id, sku)
    if job is None:
        raise LookupError(f"no GridFlock job for {sku} in tenant {tenant}")
    return Gridflock(services, tenant_id, sku, job.id)


class StillRunning(TransientError):
    """The answer to `RunPipeline` while the pipeline works: the outbox asks again later."""


class StepFailedAt(Exception):
    """A pipeline step failed; `step` is the one to name (a resumed SLICING run may find it
    has to regenerate an STL, and OpenSCAD is what broke)."""

    def __init__(self, step: GridflockStep, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


HANDLERS: Handlers[Gridflock] = Handlers()


@HANDLERS.step(RunPipeline)
async def run(state: Gridflock, message: RunPipeline) -> str:
    """Start (or resume) the pipeline here; refuse retryably until the job has settled."""
    job = await _job(state)
    if GRIDFLOCK_JOB_MACHINE.is_terminal(job.status) or job.status == S.FAILED:
        return job.status.value
    tasks = state.services.tasks
    task = tasks.get(state.key)
    if task is None or task.done():
        tasks[state.key] = asyncio.create_task(pipeline(state), name=f"gridflock {state.key}")
    raise StillRunning("gridflock", f"pipeline for {state.sku} is {job.status.value}")


@HANDLERS.command(RetryPipeline)
async def retry(state: Gridflock, message: RetryPipeline, conn: Connection) -> str:
    """FAILED -> PENDING; held orders go back to waiting, and the pipeline runs again."""
    await store.retry(conn, await _job(state, conn))
    return "retrying"


ENTITY = EntitySpec("gridflock", load, HANDLERS)


# --- the pipeline ---------------------------------------------------------------------------


@dataclass
class Run:
    """One pass of the pipeline: the size, its plan, and the plates' files as they are made."""

    state: Gridflock
    request: GridRequest
    plan: PlateSet
    plates: dict[int, dict[str, Any]] = field(default_factory=dict)
    slicing: dict[int, asyncio.Task[list[PlateResult]]] = field(default_factory=dict)
    """Slices submitted while the STL step still ran, by plate number."""

    @property
    def services(self) -> Services:
        return self.state.services

    def drop_slicing(self) -> None:
        for task in self.slicing.values():
            task.cancel()
        self.slicing.clear()

    def remember(self, results: Sequence[PlateResult]) -> list[dict[str, Any]]:
        """Merge the results into the plates (by number); all plates, in order."""
        for r in results:
            p = self.plan.plate(r.number)
            self.plates[r.number] = {
                **self.plates.get(r.number, {}), "number": r.number, "count": p.count,
                "key": p.key_hash, **{k: v for k, v in r.as_dict().items() if v is not None}}
        return [self.plates[n] for n in sorted(self.plates)]


Step = Callable[[Run, store.GridflockJob], Awaitable[store.GridflockJob]]


async def pipeline(state: Gridflock) -> None:
    """Run the job's remaining steps; a failure is recorded at the step it happened in."""
    token = logs.correlation_id.set(f"gridflock:{state.job_id}")
    job: store.GridflockJob | None = None
    run_: Run | None = None
    try:
        job = await _job(state)
        request = parse_sku(state.sku)
        run_ = Run(state, request, request.plan(), {p["number"]: p for p in job.plates})
        while (step := STEPS.get(job.status)) is not None:
            job = await step(run_, job)
    except store.JobMoved as moved:
        log.info("gridflock %s: %s", state.key, moved)
    except SlicerUnavailable as gone:
        # Not the job's fault: the outbox's next ask starts this step again (its finished
        # plates are cache hits).
        log.warning("gridflock %s: %s; resuming later", state.key, gone)
    except StepFailedAt as failure:
        await _fail(state, job, failure.step, failure.reason)
    except Exception as error:
        log.exception("gridflock %s failed at %s", state.key, job and job.status)
        await _fail(state, job, _step_of(job), str(error) or type(error).__name__)
    finally:
        if run_ is not None:
            run_.drop_slicing()  # slices of a pipeline that stopped early are not waited for
        state.services.tasks.pop(state.key, None)
        logs.correlation_id.reset(token)


async def _start(run: Run, job: store.GridflockJob) -> store.GridflockJob:
    """PENDING: complete at once if the SKU has a mapping by now (one made by hand after the
    job was requested), else start generating."""
    pool = run.services.pool
    mapping_id = await _mapping_of(pool, run.state.tenant_id, job.sku)
    async with pool.acquire() as conn, conn.transaction():
        if mapping_id is not None:
            return await store.complete(conn, job, mapping_id, existing_mapping=True)
        return await store.advance(conn, job)


async def _generate(run: Run, job: store.GridflockJob) -> store.GridflockJob:
    """Every plate's geometry; each plate's slice is submitted the moment its STL exists, so
    slicing starts with the first plate, not after the last. The step ends when every plate has
    its STL; SLICING then waits for the slices already under way."""
    slicer, engine = await _slicer(run)
    profile, slicing = run.request.profile, run.request.options.slicing

    async def one(plate: Plate) -> PlateResult:
        [made] = await slicer.run("stl", [plate], None, engine)
        if not made.failed_step:
            run.slicing[plate.number] = asyncio.create_task(
                slicer.run("gcode", [plate], profile, engine, slicing),
                name=f"gridflock {run.state.key} slice {plate.number}")
        return made

    largest_first = sorted(run.plan.plates, key=lambda p: -p.width_mm * p.depth_mm)
    results = _checked(list(await asyncio.gather(*(one(p) for p in largest_first))),
                       GridflockStep.GENERATING_STL)
    return await _advance(run, job, plates=run.remember(results),
                          stl_runs=sum(r.stl_generated for r in results))


async def _slice(run: Run, job: store.GridflockJob) -> store.GridflockJob:
    """The slices the STL step submitted, and (on a resumed run) the rest."""
    started, run.slicing = run.slicing, {}
    missing = [p for p in run.plan.plates if p.number not in started]
    try:
        results = [r for made in await asyncio.gather(*started.values()) for r in made]
    except BaseException:
        for task in started.values():
            task.cancel()
        raise
    if missing:
        results += await _make(run, "gcode", GridflockStep.SLICING, run.request.profile)
    results = _checked(results, GridflockStep.SLICING)
    return await _advance(run, job, plates=run.remember(results),
                          stl_runs=sum(r.stl_generated for r in results),
                          slice_runs=sum(r.sliced for r in results))


async def _upload(run: Run, job: store.GridflockJob) -> store.GridflockJob:
    """Store each gcode as a print file (deduplicated by content hash), then put it on the
    farm through the one upload path the queue uses too (`farm.ensure_uploaded`)."""
    plates, services, tenant_id = run.plates, run.services, run.state.tenant_id
    paths = [Path(str(plates.get(p.number, {}).get("gcode_path", ""))) for p in run.plan.plates]
    if not all(await asyncio.gather(*(asyncio.to_thread(f.is_file) for f in paths))):
        # Resumed on another node, or the cache was cleared: make them again (or hit).
        run.remember(await _make(run, "gcode", GridflockStep.UPLOADING, run.request.profile))
    sp = await load_integration(services.pool, tenant_id, SimplyPrintSettings)
    if sp is None:
        raise StepFailedAt(GridflockStep.UPLOADING,
                           "SimplyPrint is not configured for this tenant")
    for p in run.plan.plates:
        info = plates[p.number]
        content = await asyncio.to_thread(Path(info["gcode_path"]).read_bytes)
        suffix = ".gcode" if info.get("slicer", "prusaslicer") == "prusaslicer" else ".gcode.3mf"
        stored = await add_print_file(
            services.pool, tenant_id, f"{run.request.sku.lower()}-plate{p.number}{suffix}",
            content, estimated_seconds=info.get("print_seconds"),
            grams=Decimal(str(info.get("filament_g") or 0)))
        info["file_id"] = str(stored.id)
    async with services.farm.session(tenant_id, sp) as client:
        for p in run.plan.plates:
            info = plates[p.number]
            info["farm_file_id"] = await _upload_one(services, client, uuid.UUID(info["file_id"]))
    return await _advance(run, job, plates=[plates[n] for n in sorted(plates)])


async def _map(run: Run, job: store.GridflockJob) -> store.GridflockJob:
    """The product mapping (parts = plates with copies and grams) and COMPLETED in one
    transaction; a mapping someone made by hand for this SKU meanwhile is kept as it is."""
    pool, tenant_id, request = run.services.pool, run.state.tenant_id, run.request
    settings = await tenant_settings(pool, tenant_id)
    async with pool.acquire() as conn, conn.transaction():
        existing = await _mapping_of(conn, tenant_id, request.sku)
        mapping_id = existing or await create_mapping(
            conn, tenant_id, MappingSpec(request.sku, _mapping_name(run.plan)),
            [PartSpec(f"plate {p.number}", uuid.UUID(run.plates[p.number]["file_id"]), p.count,
                      Decimal(str(run.plates[p.number].get("filament_g") or 0)),
                      request.profile.id, settings.gridflock_required_tags)
             for p in run.plan.plates])
        return await store.complete(conn, job, mapping_id, existing_mapping=existing is not None)


STEPS: dict[S, Step] = {S.PENDING: _start, S.GENERATING_STL: _generate, S.SLICING: _slice,
                        S.UPLOADING: _upload, S.MAPPING: _map}


# --- helpers --------------------------------------------------------------------------------


async def _job(state: Gridflock, conn: Connection | None = None) -> store.GridflockJob:
    job = await store.find_job(conn or state.services.pool, state.tenant_id, state.sku)
    if job is None:
        raise LookupError(f"GridFlock job for {state.sku} is gone")
    return job


async def _mapping_of(db: Pool | Connection, tenant_id: uuid.UUID, sku: str) -> uuid.UUID | None:
    """The SKU's mapping for every variant (the one a pipeline makes or keeps)."""
    found: uuid.UUID | None = await db.fetchval(
        "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2 AND variant_id = ''",
        tenant_id, sku)
    return found


async def _make(run: Run, kind: Kind, step: GridflockStep,
                profile: PrinterProfile | None) -> list[PlateResult]:
    """Every plate through the slicer; the first plate that failed fails the step it names."""
    slicer, engine = await _slicer(run)
    plates = run.plan.plates
    return _checked(await slicer.run(kind, plates, profile, engine, run.request.options.slicing),
                    step)


async def _slicer(run: Run) -> tuple[Slicer, GridflockEngine]:
    slicer: Slicer | None = run.services.slicer
    if slicer is None:
        raise SlicerUnavailable("this host has no slicer")
    settings = await tenant_settings(run.services.pool, run.state.tenant_id)
    return slicer, settings.gridflock_engine


def _checked(results: list[PlateResult], step: GridflockStep) -> list[PlateResult]:
    failed = next((r for r in sorted(results, key=lambda r: r.number) if r.failed_step), None)
    if failed is not None:
        raise StepFailedAt(GridflockStep(failed.failed_step or step.value),
                           f"plate {failed.number}: {failed.error}")
    return results


async def _advance(run: Run, job: store.GridflockJob, **made: Any) -> store.GridflockJob:
    async with run.services.pool.acquire() as conn, conn.transaction():
        return await store.advance(conn, job, **made)


async def _upload_one(services: Services, client: SimplyPrintClient,
                      file_id: uuid.UUID) -> str:
    """A few tries with backoff for a flaky farm; then the job fails at UPLOADING."""
    attempt = 1
    while True:
        try:
            return await farm.ensure_uploaded(services.pool, client, file_id)
        except TransientError:
            if attempt >= UPLOAD_ATTEMPTS:
                raise
            await asyncio.sleep(backoff_delay(attempt, base=0.5, cap=10.0))
            attempt += 1


async def _fail(state: Gridflock, job: store.GridflockJob | None, step: GridflockStep,
                reason: str) -> None:
    """FAILED (only from the state this runner saw), the events, and the orders told."""
    if job is None:
        log.error("gridflock %s: could not even load its job: %s", state.key, reason)
        return
    try:
        async with state.services.pool.acquire() as conn, conn.transaction():
            await store.fail(conn, job, step, reason)
    except (store.JobMoved, IllegalTransition) as moved:
        log.info("gridflock %s: not failing it: %s", state.key, moved)


def _step_of(job: store.GridflockJob | None) -> GridflockStep:
    """The running step a job's status stands for (PENDING fails as the first step)."""
    if job is None or job.status not in STEPS or job.status == S.PENDING:
        return GridflockStep.GENERATING_STL
    return failed_step(job.status)


def _mapping_name(plan: PlateSet) -> str:
    extras = ", magnets" if plan.options.magnets else ""
    return (f"GridFlock baseplate {plan.width_mm:g} x {plan.depth_mm:g} mm{extras} "
            f"({plan.total_plates} plates, {plan.profile.name})")
