"""The printer entity: one per printer; its live state, and the puller of smart-queue work.

Memory is a cache of the printer's row and its active job (rebuilt from PostgreSQL on
activation, then checked against SimplyPrint on the first farm look). State changes are written
through with a printer.changed event (forma3d.store.printers); telemetry stays in memory and goes
to the tenant's live channel. When the printer is online, operational, enabled, ready and idle it
claims the best job its tags fit (forma3d.store.print_jobs) and starts it with CreateJob, looking
at the printer first so a crash between the two never starts a job twice. What happens to a job
after its start is reported to its order (JobStatusReport), which writes it.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast

from forma3d.db.pool import Connection
from forma3d.domain.events import EventType
from forma3d.domain.printing.fleet import (
    Observation,
    PrinterState,
    changed_fields,
    observe_row,
    offline_delay,
)
from forma3d.domain.printing.jobs import farm_time
from forma3d.domain.printing.matching import availability
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.handlers import farm
from forma3d.handlers.registry import EntitySpec, Handlers
from forma3d.handlers.services import Services
from forma3d.integrations.errors import PermanentError, TransientError
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.integrations.simplyprint import PrintJob, SimplyPrintClient, webhook_job_status
from forma3d.messaging.order import JobStatusReport
from forma3d.messaging.printer import (
    ControlPrinter,
    DispatchPrinter,
    FarmEvent,
    GetPrinter,
    ObservePrinter,
    PrinterMessage,
    ReconcilePrinter,
    ReleasePrinter,
    ResyncPrinter,
    UpdatePrinter,
)
from forma3d.messaging.refusals import Conflict
from forma3d.messaging.stock import StockJobReport
from forma3d.platform import metrics
from forma3d.retry import backoff_delay
from forma3d.store import outbox, print_jobs, printers
from forma3d.store.events import record
from forma3d.store.integrations import note_failure
from forma3d.store.print_jobs import PrinterBusy

log = logging.getLogger(__name__)

Reported = Literal["PRINTING", "COMPLETED", "FAILED", "CANCELLED"]  # JobStatusReport.status
BUSY_ATTEMPTS = 6  # dispatch retries before the active job is looked up again
P = TypeVar("P", bound=PrinterMessage)


@dataclass
class Printer:
    """The entity's memory: its row, its active job, and what only the live view needs."""

    services: Services
    printer_id: uuid.UUID
    tenant_id: uuid.UUID
    row: dict[str, Any]
    job: dict[str, Any] | None = None
    telemetry: dict[str, Any] = field(default_factory=dict)
    offline_attempts: int = 0
    resync_pending: bool = False
    resync_at: float | None = None
    busy_attempts: int = 0
    checked_farm: bool = False  # memory came from PostgreSQL; SimplyPrint not asked yet
    rng: random.Random = field(default_factory=random.Random)

    @property
    def farm_id(self) -> int | None:
        value = self.row.get("farm_printer_id")
        return int(value) if value is not None else None

    def to_self(self, model: type[P]) -> P:
        return model(tenant_id=self.tenant_id, printer_id=self.printer_id)


def observation(tenant_id: uuid.UUID, printer_id: uuid.UUID, seen: Observation) -> ObservePrinter:
    """The message that brings a look at the farm's printer to our printer's entity."""
    return ObservePrinter(tenant_id=tenant_id, printer_id=printer_id,
                          farm_printer_id=seen.farm_printer_id, state=seen.state,
                          telemetry=seen.telemetry, at=seen.at)


async def load(services: Services, key: str) -> Printer:
    printer_id = uuid.UUID(key)
    row = await printers.get(services.pool, printer_id)
    if row is None:
        raise LookupError(f"printer {key} does not exist")
    job = await print_jobs.active_job(services.pool, printer_id)
    return Printer(services, printer_id, row["tenant_id"], row, job)


HANDLERS: Handlers[Printer] = Handlers()


# --- queries --------------------------------------------------------------------------------

@HANDLERS.query(GetPrinter)
async def get(printer: Printer, message: GetPrinter) -> dict[str, Any]:
    return {**printer.row, "telemetry": dict(printer.telemetry),
            "job_id": printer.job["id"] if printer.job else None,
            "offline_attempts": printer.offline_attempts,
            "resync_at": printer.resync_at if printer.resync_pending else None}


# --- operator changes -----------------------------------------------------------------------

@HANDLERS.command(UpdatePrinter)
async def update(printer: Printer, message: UpdatePrinter, conn: Connection) -> dict[str, Any]:
    """Rename, tags, enable/disable, confirm ready...: written, logged, then a dispatch try."""
    asked = message.changes.model_dump(exclude_unset=True)
    changes = {k: v for k, v in asked.items() if printer.row.get(k) != v}
    if changes:
        await _write(printer, conn, changes, source="operator")
        printer.services.sender.tell_later(printer.to_self(DispatchPrinter), 0)
    return dict(printer.row)


@HANDLERS.command(ReleasePrinter)
async def release(printer: Printer, message: ReleasePrinter, conn: Connection) -> str:
    """An operator forced the printer's job out: if the printer still holds it, it is free and
    pulls its next job."""
    if printer.job is not None and printer.job["id"] == message.print_job_id:
        printer.job = None
    if printer.row.get("current_job_id") != message.print_job_id:
        return "not held"
    await _write(printer, conn, {"current_job_id": None}, source="operator")
    printer.services.sender.tell_later(printer.to_self(DispatchPrinter), 0)
    return "released"


async def _write(printer: Printer, conn: Connection, changes: dict[str, Any],
                 source: str) -> None:
    printer.row = await printers.change(conn, printer.row, changes, source)


async def _save(printer: Printer, changes: dict[str, Any], source: str = "farm") -> None:
    if changes:
        async with printer.services.pool.acquire() as conn, conn.transaction():
            await _write(printer, conn, changes, source)


# --- what the farm says ---------------------------------------------------------------------

@HANDLERS.step(ObservePrinter, latest_wins=True)
async def observe(printer: Printer, message: ObservePrinter) -> str:
    """A printers/Get row (sync) or a telemetry frame: state written on change only."""
    seen = Observation.from_payload(message.model_dump())
    await _apply(printer, seen)
    if seen.at:  # from the farm's production of the frame to its state here
        printer.services.observations.add(time.time() - seen.at)
    return await _after_look(printer)


async def _apply(printer: Printer, seen: Observation) -> None:
    changes = changed_fields(printer.row, seen.state)
    if printer.farm_id is None:
        changes["farm_printer_id"] = seen.farm_printer_id
    now = datetime.now(UTC)
    if "state" in changes:
        changes["state_changed_at"] = now
    if changes.get("online") is False or changes.get("state") == PrinterState.OFFLINE:
        changes["offline_since"] = now
    elif changes.get("online") is True:
        changes["offline_since"] = None
    await _save(printer, changes)
    if seen.telemetry:
        printer.telemetry = {**seen.telemetry, "at": seen.at}
        printer.services.live.publish(printer.tenant_id, {
            "type": "printer.telemetry", "printer_id": str(printer.printer_id), "at": seen.at,
            "state": printer.row["state"], "online": printer.row["online"],
            "job_id": str(printer.job["id"]) if printer.job else None, **seen.telemetry})
    printer.checked_farm = True
    _backoff_if_offline(printer)


def _backoff_if_offline(printer: Printer) -> None:
    """Offline printers are re-synced on a widening, jittered timer (never a tight loop)."""
    if printer.row["online"]:
        printer.offline_attempts = 0
        printer.resync_pending = False
        return
    if not printer.resync_pending:
        printer.offline_attempts += 1
        printer.resync_pending = True
        delay = offline_delay(printer.offline_attempts, printer.rng)
        printer.resync_at = time.time() + delay
        printer.services.sender.tell_later(printer.to_self(ResyncPrinter), delay)


@HANDLERS.step(ResyncPrinter)
async def resync(printer: Printer, message: ResyncPrinter) -> str:
    printer.resync_pending = False
    return await _look(printer)


async def _look(printer: Printer) -> str:
    """Ask SimplyPrint about this printer, then act on what it says."""
    sp = await _simplyprint(printer)
    if sp is None or printer.farm_id is None:
        return "no farm"
    async with printer.services.farm.session(printer.tenant_id, sp) as client:
        seen = await client.get_printer(printer.farm_id)
    await _apply(printer, observe_row(seen.raw, time.time()))
    return await _after_look(printer)


@HANDLERS.step(FarmEvent)
async def farm_event(printer: Printer, message: FarmEvent) -> str:
    """A SimplyPrint webhook about this printer, forwarded by the tenant."""
    event, uid = message.event, message.job.get("uid")
    job = printer.job
    mine = job is not None and uid is not None and job.get("farm_job_uid") == uid
    ended = webhook_job_status(event)
    if ended is not None and ended != PrintJobStatus.PRINTING:
        if mine or printer.row.get("farm_job_uid") == uid:
            stamp = float(message.at or time.time())
            await _ended(printer, job if mine else None, ended,
                         datetime.fromtimestamp(stamp, UTC), message.job.get("failedReason"),
                         from_event=True)
    elif event == "job.bed_cleared":
        await _save(printer, {"ready": True} if not printer.row["ready"] else {})
    elif event in ("job.paused", "job.resumed"):
        wanted = PrinterState.PAUSED if event == "job.paused" else PrinterState.PRINTING
        await _save(printer, {"state": wanted.value} if printer.row["state"] != wanted else {})
    elif event.startswith("printer."):
        return await _look(printer)
    return await _dispatch_now(printer)


async def _ended(printer: Printer, job: dict[str, Any] | None, status: PrintJobStatus,
                 at: datetime, error: str | None, *, from_event: bool,
                 why: str | None = None) -> None:
    """A print is over: the printer is free (ready again only if it clears its own bed) and
    the job's order hears it from us, as well as from the webhook (job.status is
    idempotent), so a webhook that raced our record of the job's uid loses nothing.
    `why` marks a correction found by reconciliation (logged with before and after)."""
    wanted: dict[str, Any] = {"current_job_id": None, "ready": bool(printer.row["auto_ready"])}
    if from_event:
        wanted |= {"farm_job_uid": None, "state": PrinterState.OPERATIONAL.value}
    changes = {k: v for k, v in wanted.items() if printer.row.get(k) != v}
    async with printer.services.pool.acquire() as conn, conn.transaction():
        await _write(printer, conn, changes, "farm" if from_event else "reconciliation")
        if job is not None:
            before = await conn.fetchval("SELECT status FROM print_jobs WHERE id = $1",
                                         job["id"])
            await _job_update(printer, conn, job, status, at, error or (
                None if status == PrintJobStatus.COMPLETED else f"farm reports {status}"))
            if why is not None:
                await record(conn, EventType.PRINT_JOB_RECONCILED, printer.tenant_id, {
                    "print_job_id": str(job["id"]), "reason": why,
                    "before": {"status": before}, "after": {"status": status.value}},
                    subject=("print_job", job["id"]))
    if job is not None and printer.job is job:
        printer.job = None


async def _after_look(printer: Printer) -> str:
    if printer.job is not None:
        await _check_job(printer)  # memory only, unless the farm disagrees
        if printer.job is not None and (printer.job["farm_job_uid"]
                                        or printer.job["status"] != PrintJobStatus.ASSIGNED):
            return "busy"
    return await _dispatch_now(printer)


async def _check_job(printer: Printer) -> None:
    """Our active job against what the farm's printer runs; resolve from history if they
    disagree (a lost webhook, a crash between claim and CreateJob)."""
    job = printer.job
    assert job is not None
    running = printer.row.get("farm_job_uid")
    if job["farm_job_uid"] is None:
        if running and not await printer.services.pool.fetchval(
                "SELECT true FROM print_jobs WHERE tenant_id = $1 AND farm_job_uid = $2",
                printer.tenant_id, running):
            await _started(printer, job, running, None, "adopted after a crash")
        return
    if running == job["farm_job_uid"] or printer.row["state"] == PrinterState.OFFLINE:
        return
    await _reconcile_job(printer, job)


async def _reconcile_job(printer: Printer, job: dict[str, Any]) -> str:
    """The farm no longer runs our job: its history says how it ended."""
    sp = await _simplyprint(printer)
    if sp is None or printer.farm_id is None:
        return "no farm"
    async with printer.services.farm.session(printer.tenant_id, sp) as client:
        page = await client.get_print_jobs(printer_ids=[printer.farm_id], page_size=50)
    found = next((j for j in page.jobs if j.uid == job["farm_job_uid"]), None)
    status = found.job_status if found else None
    if status is None or status == PrintJobStatus.PRINTING:
        await print_jobs.confirm_alive(printer.services.pool, job["id"])
        return "still running"
    at = (found.end_date or datetime.now(UTC)) if found else datetime.now(UTC)
    await _ended(printer, job, status, at, f"farm reports {found.status}" if found else None,
                 from_event=False, why="the printer no longer runs it")
    return status


@HANDLERS.step(ReconcilePrinter)
async def reconcile(printer: Printer, message: ReconcilePrinter) -> str:
    """A stuck job (no update for a while): look at the printer, then at the history."""
    result = await _look(printer)
    printer.job = await print_jobs.active_job(printer.services.pool, printer.printer_id)
    if printer.job is not None and printer.job["farm_job_uid"] is not None:
        return await _reconcile_job(printer, printer.job)
    return result


# --- dispatch -------------------------------------------------------------------------------

@HANDLERS.step(DispatchPrinter)
async def dispatch(printer: Printer, message: DispatchPrinter) -> str:
    decision = await _dispatch_now(printer)
    metrics.inc("forma3d_dispatch_decisions", decision=decision.split(":", 1)[0])
    return decision


async def _dispatch_now(printer: Printer) -> str:
    pool = printer.services.pool
    if not printer.checked_farm and printer.farm_id is not None:
        return await _look(printer)  # memory came from PostgreSQL: ask SimplyPrint first
    if printer.job is not None:  # an operator may have cancelled or forced it meanwhile
        printer.job = await print_jobs.active_job(pool, printer.printer_id)
    if printer.job is not None:
        if printer.job["status"] == PrintJobStatus.ASSIGNED and not printer.job["farm_job_uid"]:
            # A crash came between claim and start.
            return await _start(printer, printer.job, interrupted=True)
        return "busy"
    if availability(printer.row):
        return "unavailable"
    sp = await _simplyprint(printer)
    if sp is None or sp.dispatch_mode != "smart":
        return "not smart"
    try:
        job = await print_jobs.claim(pool, printer.tenant_id, printer.row)
    except PrinterBusy:
        # The last job's end is still on its way to its order: try again shortly.
        printer.busy_attempts += 1
        if printer.busy_attempts > BUSY_ATTEMPTS:  # long enough for a job.status: look again
            printer.job = await print_jobs.active_job(pool, printer.printer_id)
        printer.services.sender.tell_later(
            printer.to_self(DispatchPrinter),
            0.2 + backoff_delay(printer.busy_attempts, base=0.2, cap=5.0, rng=printer.rng))
        return "previous job not closed yet"
    printer.busy_attempts = 0
    if job is None:
        return "no matching job"
    printer.job = job
    return await _start(printer, job)


async def _start(printer: Printer, job: dict[str, Any], interrupted: bool = False) -> str:
    """CreateJob, looking first: a printer already running a job we have no uid for is the
    start that a crash interrupted, so it is adopted, not started again. After a crash
    (`interrupted`) the farm's history is read too: that start may already have finished."""
    sp = await _simplyprint(printer)
    farm_id = printer.farm_id
    if sp is None or farm_id is None:
        return await _release(printer, job, "no SimplyPrint printer")
    try:
        async with printer.services.farm.session(printer.tenant_id, sp) as client:
            seen = await client.get_printer(farm_id)
            done = (await _finished_start(printer, client, farm_id, job)
                    if interrupted and (seen.job is None or not seen.job.uid) else None)
            if done is not None:
                await _started(printer, job, done.uid, done.id, "adopted from the farm's history")
                return await _reconcile_job(printer, job)
            if seen.job is None or not seen.job.uid:
                if seen.state != "operational":
                    return await _release(printer, job, f"printer is {seen.state}")
                file_id = await farm.ensure_uploaded(printer.services.pool, client,
                                                     job["file_id"])
                await client.create_job(farm_id, file_id=file_id)
                seen = await client.get_printer(farm_id)
    except PermanentError as error:
        await note_failure(printer.services.pool, printer.tenant_id, error)
        return await _release(printer, job, f"SimplyPrint refused the start: {error}")
    except TransientError:
        printer.services.sender.tell_later(
            printer.to_self(DispatchPrinter),
            backoff_delay(2, base=1.0, cap=30.0, rng=printer.rng))
        raise
    uid = seen.job.uid if seen.job else None
    farm_job = seen.job.id if seen.job else None
    await _started(printer, job, uid, farm_job, "started")
    return "started"


async def _finished_start(printer: Printer, client: SimplyPrintClient, farm_id: int,
                          job: dict[str, Any]) -> PrintJob | None:
    """A farm job on this printer of this job's file that none of our jobs accounts for: the
    start a crash interrupted, which ended before we looked (the farm's history), or None."""
    pool = printer.services.pool
    filename = await pool.fetchval("SELECT filename FROM print_files WHERE id = $1",
                                   job["file_id"])
    page = await client.get_print_jobs(printer_ids=[farm_id], page_size=20)
    candidates = [j for j in page.jobs if j.filename == filename]
    if not candidates:
        return None
    known = {r["farm_job_uid"] for r in await pool.fetch(
        "SELECT farm_job_uid FROM print_jobs WHERE tenant_id = $1 AND farm_job_uid = ANY($2)",
        printer.tenant_id, [j.uid for j in candidates])}
    return next((j for j in candidates if j.uid not in known), None)


async def _started(printer: Printer, job: dict[str, Any], uid: str | None,
                   farm_job: int | None, how: str) -> None:
    async with printer.services.pool.acquire() as conn, conn.transaction():
        await print_jobs.record_start(conn, job["id"], uid, farm_job, printer.farm_id)
        job.update(farm_job_uid=uid, farm_printer_id=printer.farm_id)
        await _job_update(printer, conn, job, PrintJobStatus.PRINTING, datetime.now(UTC))
        await _write(printer, conn, {k: v for k, v in {
            "current_job_id": job["id"], "farm_job_uid": uid, "ready": False,
            "state": PrinterState.PRINTING.value}.items() if printer.row.get(k) != v},
            source=f"dispatch: {how}")


async def _job_update(printer: Printer, conn: Connection, job: dict[str, Any],
                      status: PrintJobStatus, at: datetime, error: str | None = None) -> None:
    """Order jobs go through their order (retries, progress); stock jobs change directly."""
    at = farm_time(at, datetime.now(UTC))
    if job.get("order_id") is not None:
        await outbox.send(conn, JobStatusReport(
            tenant_id=printer.tenant_id, order_id=job["order_id"], print_job_id=job["id"],
            status=cast(Reported, status.value), at=at, farm_job_uid=job["farm_job_uid"],
            farm_printer_id=printer.farm_id, error=error))
        return
    row = await conn.fetchrow("SELECT * FROM print_jobs WHERE id = $1 FOR UPDATE", job["id"])
    if row is None:
        return
    fields: dict[str, Any] = {"status_at": at}
    if status == PrintJobStatus.PRINTING:
        fields["started_at"] = at
    elif status == PrintJobStatus.COMPLETED:
        fields["completed_at"] = at
    else:
        fields["error"] = error or status.value
    if await print_jobs.set_job_status(conn, dict(row.items()), status, **fields) \
            and status != PrintJobStatus.PRINTING:
        # The tenant owns stock: it retries a failed stock job and completes its batch.
        await outbox.send(conn, StockJobReport(tenant_id=printer.tenant_id, print_job_id=job["id"]))


async def _release(printer: Printer, job: dict[str, Any], reason: str) -> str:
    await print_jobs.release(printer.services.pool, job["id"], printer.printer_id, reason)
    printer.job = None
    return f"released: {reason}"


# --- controls -------------------------------------------------------------------------------

@HANDLERS.step(ControlPrinter)
async def control(printer: Printer, message: ControlPrinter) -> str:
    """Pause, resume or cancel whatever this printer is printing."""
    sp = await _simplyprint(printer)
    farm_id = printer.farm_id
    if sp is None or farm_id is None:
        raise Conflict("printer is not linked to SimplyPrint")
    async with printer.services.farm.session(printer.tenant_id, sp) as client:
        if message.action == "pause":
            await client.pause(farm_id)
        elif message.action == "resume":
            await client.resume(farm_id)
        else:
            await client.cancel(farm_id, reason=6,
                                comment=(message.comment or "cancelled")[:500])
    return message.action


async def _simplyprint(printer: Printer) -> SimplyPrintSettings | None:
    """The tenant's SimplyPrint settings from the host's cache (dropped as a change commits)."""
    services = printer.services
    return await services.integrations.get(services.pool, printer.tenant_id, SimplyPrintSettings)


ENTITY = EntitySpec("printer", load, HANDLERS)
