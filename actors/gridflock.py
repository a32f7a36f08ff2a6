"""GridflockActor: one per tenant and canonical SKU; runs that size's pipeline once.

PENDING -> GENERATING_STL -> SLICING -> UPLOADING -> MAPPING -> COMPLETED, or FAILED with the
step and the error. The pipeline takes minutes, far longer than a mailbox may be held or the
outbox waits for an answer (30 s), so `gridflock.run` only makes sure a background task in this
host runs it and answers "still running" as a retryable refusal: the outbox keeps the message
and asks again with backoff until the job has settled. That redelivery is the crash watchdog:
after a host dies, the next ask activates the entity elsewhere, finds no task and resumes from
the persisted step (finished plates are cache hits, so a resumed step repeats no tool run).

Every step is persisted with a conditional update, so a second runner (a host that lost the key
in a rebalance) stops at its first stale write instead of fighting. When the job settles, the
tenant hears `mapping.changed` for the SKU and its held orders expand again: on success they
print, on failure they are held with the step and reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ray

from actors.entity import Entity, command, step
from actors.slicer_pool import Kind, PlateResult, get_pool
from forma3d import logs
from forma3d.db.pool import Connection, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.gridflock.planner import Plate, PlateSet
from forma3d.domain.gridflock.profiles import PrinterProfile
from forma3d.domain.gridflock.sku import GridRequest, parse_sku
from forma3d.domain.gridflock.states import (
    GRIDFLOCK_JOB_MACHINE,
    GridflockJobStatus,
    GridflockStep,
    next_step,
)
from forma3d.handlers import farm
from forma3d.integrations.errors import TransientError
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.envelope import Envelope
from forma3d.retry import backoff_delay
from forma3d.store.events import record
from forma3d.store.gridflock import KIND, RETRY, RUN, run_message
from forma3d.store.integrations import load_integration
from forma3d.store.outbox import enqueue
from forma3d.store.tenants import tenant_settings

log = logging.getLogger(__name__)
S = GridflockJobStatus
TASKS = "gridflock.pipelines"
UPLOAD_ATTEMPTS = 4


class StillRunning(TransientError):
    """The answer to `gridflock.run` while the pipeline works: the outbox asks again later."""


class JobLost(RuntimeError):
    """A conditional write found the job moved on: another runner or an operator got there."""


class GridflockActor(Entity):
    kind = KIND

    async def activate(self) -> None:
        tenant, _, sku = self.key.partition(":")
        self.tenant_id = uuid.UUID(tenant)
        self.sku = sku
        job_id = await self.ctx.pool.fetchval(
            "SELECT id FROM gridflock_jobs WHERE tenant_id = $1 AND sku = $2",
            self.tenant_id, sku)
        if job_id is None:
            raise LookupError(f"no GridFlock job for {sku} in tenant {tenant}")
        self.job_id: uuid.UUID = job_id

    async def _job(self, conn: Any = None) -> dict[str, Any]:
        row = await (conn or self.ctx.pool).fetchrow(
            "SELECT * FROM gridflock_jobs WHERE id = $1", self.job_id)
        return record_to_dict(row)

    def _tasks(self) -> dict[str, asyncio.Task[None]]:
        tasks: dict[str, asyncio.Task[None]] = self.ctx.services.setdefault(TASKS, {})
        return tasks

    # --- messages -----------------------------------------------------------------------

    @step(RUN)
    async def run(self, envelope: Envelope) -> str:
        """Start (or resume) the pipeline here; refuse retryably until the job has settled."""
        status = S((await self._job())["status"])
        if GRIDFLOCK_JOB_MACHINE.is_terminal(status) or status == S.FAILED:
            return status.value
        task = self._tasks().get(self.key)
        if task is None or task.done():
            self._tasks()[self.key] = asyncio.create_task(self._pipeline(),
                                                          name=f"gridflock {self.key}")
        raise StillRunning("gridflock", f"pipeline for {self.sku} is {status.value}")

    @command(RETRY)
    async def retry(self, envelope: Envelope, conn: Connection) -> str:
        """FAILED -> PENDING; held orders go back to waiting, and the pipeline runs again."""
        job = await self._job(conn)
        GRIDFLOCK_JOB_MACHINE.check(S(job["status"]), S.PENDING)
        await conn.execute(
            """UPDATE gridflock_jobs SET status = 'PENDING', failed_step = NULL, error = NULL,
                      attempts = attempts + 1, updated_at = now() WHERE id = $1""", self.job_id)
        await enqueue(conn, run_message(self.tenant_id, self.sku, self.job_id))
        await self._announce(conn)
        return "retrying"

    # --- the pipeline -------------------------------------------------------------------

    async def _pipeline(self) -> None:
        token = logs.correlation_id.set(f"gridflock:{self.job_id}")
        status = S.PENDING
        try:
            job = await self._job()
            request = parse_sku(self.sku)
            plan = request.plan()
            state: dict[str, Any] = {"plates": {p["number"]: p for p in job["plates"]}}
            steps: dict[S, Callable[[GridRequest, PlateSet, dict[str, Any]], Awaitable[None]]] = {
                S.GENERATING_STL: self._generate, S.SLICING: self._slice,
                S.UPLOADING: self._upload, S.MAPPING: self._map}
            status = S(job["status"])
            while status in steps or status == S.PENDING:
                if status == S.PENDING:
                    await self._move(S.PENDING, S.GENERATING_STL, started=True)
                    status = S.GENERATING_STL
                await steps[status](request, plan, state)
                status = S((await self._job())["status"])
        except JobLost as lost:
            log.info("gridflock %s: %s", self.key, lost)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as gone:
            # The pool actor restarted under us: not the job's fault. The outbox's next ask
            # starts this step again (its finished plates are cache hits).
            log.warning("gridflock %s: slicer pool unavailable (%s); resuming later",
                        self.key, type(gone).__name__)
        except StepFailedAt as failure:
            await self._fail(status, failure.step, failure.reason)
        except Exception as error:
            log.exception("gridflock %s failed at %s", self.key, status)
            reason = str(error) or type(error).__name__
            await self._fail(status, _step_of(status), reason)
        finally:
            self._tasks().pop(self.key, None)
            logs.correlation_id.reset(token)

    async def _pool_run(self, kind: Kind, step: S, plates: tuple[Plate, ...],
                        profile: PrinterProfile | None) -> list[PlateResult]:
        pool = self.ctx.services.get("slicer_pool") or get_pool()
        self.ctx.services["slicer_pool"] = pool
        results: list[PlateResult] = await pool.run.remote(kind, list(plates), profile)
        failed = next((r for r in results if r.failed_step), None)
        if failed is not None:
            raise StepFailedAt(GridflockStep(failed.failed_step or step.value),
                               f"plate {failed.number}: {failed.error}")
        return results

    def _remember(self, state: dict[str, Any], plan: PlateSet,
                  results: list[PlateResult]) -> list[dict[str, Any]]:
        plates = state["plates"]
        for r in results:
            p = plan.plate(r.number)
            plates[r.number] = {**plates.get(r.number, {}), "number": r.number,
                                "count": p.count, "key": p.key_hash,
                                **{k: v for k, v in r.as_dict().items() if v is not None}}
        return [plates[n] for n in sorted(plates)]

    async def _generate(self, request: GridRequest, plan: PlateSet,
                        state: dict[str, Any]) -> None:
        results = await self._pool_run("stl", S.GENERATING_STL, plan.plates, None)
        runs = sum(r.stl_generated for r in results)
        await self._move(S.GENERATING_STL, S.SLICING, plates=self._remember(state, plan, results),
                         stl_runs=runs)

    async def _slice(self, request: GridRequest, plan: PlateSet, state: dict[str, Any]) -> None:
        results = await self._pool_run("gcode", S.SLICING, plan.plates, request.profile)
        await self._move(S.SLICING, S.UPLOADING, plates=self._remember(state, plan, results),
                         stl_runs=sum(r.stl_generated for r in results),
                         slice_runs=sum(r.sliced for r in results))

    async def _upload(self, request: GridRequest, plan: PlateSet, state: dict[str, Any]) -> None:
        """Store each gcode as a print file (deduplicated by content hash), then put it on the
        farm through the one upload path the queue uses too (`ensure_uploaded`)."""
        plates = state["plates"]
        paths = [Path(str(plates.get(p.number, {}).get("gcode_path", ""))) for p in plan.plates]
        if not all(await asyncio.gather(*(asyncio.to_thread(f.is_file) for f in paths))):
            # Resumed on another node, or the cache was cleared: make them again (or hit).
            results = await self._pool_run("gcode", S.UPLOADING, plan.plates, request.profile)
            self._remember(state, plan, results)
        sp = await load_integration(self.ctx.pool, self.tenant_id, SimplyPrintSettings)
        if sp is None:
            raise StepFailedAt(GridflockStep.UPLOADING,
                               "SimplyPrint is not configured for this tenant")
        for p in plan.plates:
            info = plates[p.number]
            content = await asyncio.to_thread(Path(info["gcode_path"]).read_bytes)
            info["file_id"] = str(await self._print_file(request, p, info, content))
        async with sp.client() as client:
            for p in plan.plates:
                info = plates[p.number]
                info["farm_file_id"] = await self._upload_one(client, uuid.UUID(info["file_id"]))
        await self._move(S.UPLOADING, S.MAPPING, plates=[plates[n] for n in sorted(plates)])

    async def _print_file(self, request: GridRequest, plate: Plate, info: dict[str, Any],
                          content: bytes) -> uuid.UUID:
        suffix = ".gcode" if info.get("slicer", "prusaslicer") == "prusaslicer" else ".gcode.3mf"
        name = f"{request.sku.lower()}-plate{plate.number}{suffix}"
        file_id: uuid.UUID = await self.ctx.pool.fetchval(
            """INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes,
                                        content, estimated_seconds, grams)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (tenant_id, content_hash) DO UPDATE SET filename = print_files.filename
               RETURNING id""",
            uuid.uuid4(), self.tenant_id, name, hashlib.sha256(content).hexdigest(),
            len(content), content, info.get("print_seconds"),
            Decimal(str(info.get("filament_g") or 0)))
        return file_id

    async def _upload_one(self, client: Any, file_id: uuid.UUID) -> str:
        """A few tries with backoff for a flaky farm; then the job fails at UPLOADING."""
        attempt = 1
        while True:
            try:
                return await farm.ensure_uploaded(self.ctx.pool, client, file_id)
            except TransientError:
                if attempt >= UPLOAD_ATTEMPTS:
                    raise
                await asyncio.sleep(backoff_delay(attempt, base=0.5, cap=10.0))
                attempt += 1

    async def _map(self, request: GridRequest, plan: PlateSet, state: dict[str, Any]) -> None:
        """The product mapping (parts = plates with copies and grams), COMPLETED, the event and
        the tenant's `mapping.changed`, all in one transaction."""
        plates = state["plates"]
        settings = await tenant_settings(self.ctx.pool, self.tenant_id)
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchval(
                "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2"
                " AND variant_id = ''", self.tenant_id, request.sku)
            mapping_id = existing or uuid.uuid4()
            if existing is None:  # a mapping someone made by hand for this SKU is kept as is
                await conn.execute(
                    "INSERT INTO product_mappings (id, tenant_id, sku, name)"
                    " VALUES ($1, $2, $3, $4)",
                    mapping_id, self.tenant_id, request.sku, _mapping_name(plan))
                await conn.executemany(
                    """INSERT INTO mapping_parts (id, tenant_id, mapping_id, name, file_id,
                           quantity, print_profile, grams, required_tags, position)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                    [(uuid.uuid4(), self.tenant_id, mapping_id, f"plate {p.number}",
                      uuid.UUID(plates[p.number]["file_id"]), p.count, request.profile.id,
                      Decimal(str(plates[p.number].get("filament_g") or 0)),
                      settings.gridflock_required_tags, p.number) for p in plan.plates])
            await self._move(S.MAPPING, S.COMPLETED, conn=conn, mapping_id=mapping_id,
                             completed=True)
            await record(conn, EventType.GRIDFLOCK_MAPPING_READY, self.tenant_id, {
                "sku": request.sku, "product_mapping_id": str(mapping_id),
                "gridflock_job_id": str(self.job_id), "existing_mapping": existing is not None},
                subject=("gridflock_job", self.job_id))
            await self._announce(conn)

    # --- persistence --------------------------------------------------------------------

    async def _move(self, current: S, target: S, *, conn: Any = None,
                    plates: list[dict[str, Any]] | None = None, stl_runs: int = 0,
                    slice_runs: int = 0, mapping_id: uuid.UUID | None = None,
                    started: bool = False, completed: bool = False) -> None:
        GRIDFLOCK_JOB_MACHINE.check(current, target)
        if target != S.FAILED and target != S.COMPLETED:
            assert target == next_step(current)
        done = await (conn or self.ctx.pool).execute(
            """UPDATE gridflock_jobs SET status = $3, plates = coalesce($4, plates),
                      stl_runs = stl_runs + $5, slice_runs = slice_runs + $6,
                      mapping_id = coalesce($7, mapping_id),
                      started_at = CASE WHEN $8 THEN now() ELSE started_at END,
                      completed_at = CASE WHEN $9 THEN now() ELSE completed_at END,
                      updated_at = now()
               WHERE id = $1 AND status = $2""",
            self.job_id, current.value, target.value, plates, stl_runs, slice_runs, mapping_id,
            started, completed)
        if not done.endswith(" 1"):
            raise JobLost(f"job is no longer {current.value}")

    async def _fail(self, status: S, step_name: GridflockStep, reason: str) -> None:
        """FAILED (only from the state this runner saw), the event, and the orders told."""
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            done = await conn.execute(
                """UPDATE gridflock_jobs SET status = 'FAILED', failed_step = $3, error = $4,
                          updated_at = now()
                   WHERE id = $1 AND status = $2""",
                self.job_id, status.value, step_name.value, reason[:2000])
            if not done.endswith(" 1"):
                return
            await record(conn, EventType.GRIDFLOCK_PIPELINE_FAILED, self.tenant_id, {
                "sku": self.sku, "gridflock_job_id": str(self.job_id),
                "failed_step": step_name.value, "error_message": reason[:2000]},
                subject=("gridflock_job", self.job_id))
            await self._announce(conn)

    async def _announce(self, conn: Connection) -> None:
        """Orders waiting on this SKU expand again and read the job's outcome."""
        await enqueue(conn, Envelope("tenant", str(self.tenant_id), "mapping.changed",
                                     str(self.tenant_id), {"sku": self.sku, "variant_id": ""},
                                     correlation_id=logs.correlation_id.get(), durable=True))


class StepFailedAt(Exception):
    """A pipeline step failed; `step` is the one to name (a resumed SLICING run may find it
    has to regenerate an STL, and OpenSCAD is what broke)."""

    def __init__(self, step: GridflockStep, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


def _step_of(status: S) -> GridflockStep:
    """The running step a status stands for (PENDING fails as the first step)."""
    return GridflockStep.GENERATING_STL if status == S.PENDING else GridflockStep(status.value)


def _mapping_name(plan: PlateSet) -> str:
    extras = ", magnets" if plan.options.magnets else ""
    return (f"GridFlock baseplate {plan.width_mm:g} x {plan.depth_mm:g} mm{extras} "
            f"({plan.total_plates} plates, {plan.profile.name})")
