"""PrinterActor: one per printer; its live state, and the puller of smart-queue work.

Memory is a cache of the printer's row and its active job (rebuilt from PostgreSQL on
activation, then checked against SimplyPrint on the first farm look). State changes are written
through with an event-log entry; telemetry stays in memory and goes to the tenant's live channel.
When the printer is online, operational, enabled, ready and idle it claims the best job its tags
fit (forma3d.store.print_jobs) and starts it with CreateJob, looking at the printer first so a
crash between the two never starts a job twice.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from actors.dispatch import farm_session, observed, publish, tell_later
from actors.entity import Entity, command, query, step
from forma3d.db.pool import Connection, Pool, record_to_dict
from forma3d.domain.events import EventType
from forma3d.domain.printing.fleet import (
    Observation,
    PrinterState,
    changed_fields,
    observe_row,
    offline_delay,
)
from forma3d.domain.printing.matching import availability
from forma3d.domain.printing.reconcile import HISTORY_STATUS, JobUpdate
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.handlers import farm
from forma3d.integrations.errors import PermanentError, TransientError
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.integrations.simplyprint import Printer, SimplyPrintClient
from forma3d.messaging.envelope import Envelope
from forma3d.retry import backoff_delay
from forma3d.store import print_jobs
from forma3d.store.events import record
from forma3d.store.integrations import load_integration
from forma3d.store.outbox import enqueue
from forma3d.store.print_jobs import PrinterBusy, active_job, claim, release

log = logging.getLogger(__name__)

# Fields an update may change; everything else is owned by the system.
UPDATABLE = ("name", "model", "nozzle_diameter", "state", "online", "enabled", "ready", "tags",
             "materials", "external_id", "auto_ready", "farm_printer_id")
JOB_END = {"job.done": "COMPLETED", "job.failed": "FAILED", "job.cancelled": "CANCELLED"}
SETTINGS_TTL = 30.0


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    if hasattr(value, "as_tuple"):  # Decimal
        return str(value)
    return value


class PrinterActor(Entity):
    kind = "printer"

    async def activate(self) -> None:
        self.printer_id = uuid.UUID(self.key)
        row = await self.ctx.pool.fetchrow("SELECT * FROM printers WHERE id = $1",
                                           self.printer_id)
        if row is None:
            raise LookupError(f"printer {self.key} does not exist")
        self.state: dict[str, Any] = record_to_dict(row)
        self.tenant_id: uuid.UUID = row["tenant_id"]
        self.job = await active_job(self.ctx.pool, self.printer_id)
        self.telemetry: dict[str, Any] = {}
        self.offline_attempts = 0
        self.resync_pending = False
        self.resync_at: float | None = None
        self.busy_attempts = 0
        self.checked_farm = False  # memory came from PostgreSQL; SimplyPrint not asked yet
        self.rng = random.Random()
        self._settings: tuple[SimplyPrintSettings | None, float] = (None, 0.0)

    @property
    def pool(self) -> Pool:
        return self.ctx.pool

    @property
    def farm_id(self) -> int | None:
        value = self.state.get("farm_printer_id")
        return int(value) if value is not None else None

    def _self(self, message_type: str, payload: dict[str, Any] | None = None) -> Envelope:
        return Envelope("printer", self.key, message_type, str(self.tenant_id), payload or {})

    # --- queries ------------------------------------------------------------------------

    @query("printer.get")
    async def get(self, envelope: Envelope) -> dict[str, Any]:
        return {**self.state, "telemetry": dict(self.telemetry),
                "job_id": self.job["id"] if self.job else None,
                "offline_attempts": self.offline_attempts,
                "resync_at": self.resync_at if self.resync_pending else None}

    # --- operator changes ---------------------------------------------------------------

    @command("printer.update")
    async def update(self, envelope: Envelope, conn: Connection) -> dict[str, Any]:
        """Rename, tags, enable/disable, confirm ready...: written, logged, then a dispatch try."""
        changes = {k: v for k, v in envelope.payload.items() if k in UPDATABLE}
        unknown = set(envelope.payload) - set(UPDATABLE)
        if unknown:
            raise ValueError(f"printer.update cannot change {sorted(unknown)}")
        changes = {k: v for k, v in changes.items() if self.state.get(k) != v}
        if changes:
            await self._write(conn, changes, source="operator")
            tell_later(self.ctx, self._self("printer.dispatch"), 0)
        return dict(self.state)

    async def _write(self, conn: Connection, changes: dict[str, Any], source: str) -> None:
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
        row = await conn.fetchrow(
            f"UPDATE printers SET {sets}, version = version + 1, updated_at = now()"
            " WHERE id = $1 RETURNING *", self.printer_id, *changes.values())
        before = {k: _jsonable(self.state.get(k)) for k in changes}
        self.state = record_to_dict(row)
        await record(conn, EventType.PRINTER_CHANGED, self.tenant_id, {
            "printer_id": self.key, "source": source, "before": before,
            "after": {k: _jsonable(v) for k, v in changes.items()}},
            subject=("printer", self.key))

    async def _save(self, changes: dict[str, Any], source: str = "farm") -> None:
        if changes:
            async with self.pool.acquire() as conn, conn.transaction():
                await self._write(conn, changes, source)

    # --- what the farm says -------------------------------------------------------------

    @step("printer.observe", latest_wins=True)
    async def observe(self, envelope: Envelope) -> str:
        """A printers/Get row (sync) or a telemetry frame: state written on change only."""
        await self._apply(Observation.from_payload(envelope.payload))
        return await self._after_look()

    async def _apply(self, seen: Observation) -> None:
        changes = changed_fields(self.state, seen.state)
        if self.farm_id is None:
            changes["farm_printer_id"] = seen.farm_printer_id
        now = datetime.now(UTC)
        if "state" in changes:
            changes["state_changed_at"] = now
        if changes.get("online") is False or changes.get("state") == PrinterState.OFFLINE:
            changes["offline_since"] = now
        elif changes.get("online") is True:
            changes["offline_since"] = None
        await self._save(changes)
        if seen.at:
            observed(self.ctx, time.time() - seen.at)
        if seen.telemetry:
            self.telemetry = {**seen.telemetry, "at": seen.at}
            await publish(self.ctx, str(self.tenant_id), {
                "type": "printer.telemetry", "printer_id": self.key, "at": seen.at,
                "state": self.state["state"], "online": self.state["online"],
                "job_id": str(self.job["id"]) if self.job else None, **seen.telemetry})
        self.checked_farm = True
        self._backoff_if_offline()

    def _backoff_if_offline(self) -> None:
        """Offline printers are re-synced on a widening, jittered timer (never a tight loop)."""
        if self.state["online"]:
            self.offline_attempts = 0
            self.resync_pending = False
            return
        if not self.resync_pending:
            self.offline_attempts += 1
            self.resync_pending = True
            delay = offline_delay(self.offline_attempts, self.rng)
            self.resync_at = time.time() + delay
            tell_later(self.ctx, self._self("printer.resync"), delay)

    @step("printer.resync")
    async def resync(self, envelope: Envelope) -> str:
        self.resync_pending = False
        return await self._look()

    async def _look(self) -> str:
        """Ask SimplyPrint about this printer, then act on what it says."""
        sp = await self._simplyprint()
        if sp is None or self.farm_id is None:
            return "no farm"
        async with farm_session(self.ctx, self.tenant_id, sp) as client:
            printer = await client.get_printer(self.farm_id)
        await self._apply(observe_row(printer.raw, time.time()))
        return await self._after_look()

    @step("printer.farm_event")
    async def farm_event(self, envelope: Envelope) -> str:
        """A SimplyPrint webhook about this printer, forwarded by the tenant."""
        event = str(envelope.payload.get("event", ""))
        job = envelope.payload.get("job") or {}
        uid = job.get("uid")
        mine = self.job is not None and uid is not None and self.job.get("farm_job_uid") == uid
        if event in JOB_END:
            if mine or self.state.get("farm_job_uid") == uid:
                stamp = float(envelope.payload.get("at") or time.time())
                await self._ended(self.job if mine else None, JOB_END[event],
                                  datetime.fromtimestamp(stamp, UTC), job.get("failedReason"),
                                  from_event=True)
        elif event == "job.bed_cleared":
            await self._save({"ready": True} if not self.state["ready"] else {})
        elif event in ("job.paused", "job.resumed"):
            wanted = PrinterState.PAUSED if event == "job.paused" else PrinterState.PRINTING
            await self._save({"state": wanted.value} if self.state["state"] != wanted else {})
        elif event.startswith("printer."):
            return await self._look()
        return await self.dispatch_now()

    async def _ended(self, job: dict[str, Any] | None, status: str, at: datetime,
                     error: str | None, *, from_event: bool, why: str | None = None) -> None:
        """A print is over: the printer is free (ready again only if it clears its own bed) and
        the job's order hears it from us, as well as from the webhook (job.status is
        idempotent), so a webhook that raced our record of the job's uid loses nothing.
        `why` marks a correction found by reconciliation (logged with before and after)."""
        wanted: dict[str, Any] = {"current_job_id": None, "ready": bool(self.state["auto_ready"])}
        if from_event:
            wanted |= {"farm_job_uid": None, "state": PrinterState.OPERATIONAL.value}
        changes = {k: v for k, v in wanted.items() if self.state.get(k) != v}
        async with self.pool.acquire() as conn, conn.transaction():
            if changes:
                await self._write(conn, changes, "farm" if from_event else "reconciliation")
            if job is not None:
                before = await conn.fetchval("SELECT status FROM print_jobs WHERE id = $1",
                                             job["id"])
                await self._job_update(conn, job, JobUpdate(
                    str(job["id"]), status, at, None, job["farm_job_uid"], self.farm_id,
                    error or (None if status == "COMPLETED" else f"farm reports {status}")))
                if why is not None:
                    await record(conn, EventType.PRINT_JOB_RECONCILED, self.tenant_id, {
                        "print_job_id": str(job["id"]), "reason": why,
                        "before": {"status": before}, "after": {"status": status}},
                        subject=("print_job", job["id"]))
        if job is not None and self.job is job:
            self.job = None

    async def _after_look(self) -> str:
        if self.job is not None:
            await self._check_job()  # memory only, unless the farm disagrees
            if self.job is not None and (self.job["farm_job_uid"]
                                         or self.job["status"] != PrintJobStatus.ASSIGNED):
                return "busy"
        return await self.dispatch_now()

    async def _check_job(self) -> None:
        """Our active job against what the farm's printer runs; resolve from history if they
        disagree (a lost webhook, a crash between claim and CreateJob)."""
        job = self.job
        assert job is not None
        running = self.state.get("farm_job_uid")
        if job["farm_job_uid"] is None:
            if running and not await self.pool.fetchval(
                    "SELECT true FROM print_jobs WHERE tenant_id = $1 AND farm_job_uid = $2",
                    self.tenant_id, running):
                await self._started(job, running, None, "adopted after a crash")
            return
        if running == job["farm_job_uid"] or self.state["state"] == PrinterState.OFFLINE:
            return
        await self.reconcile_job(job)

    async def reconcile_job(self, job: dict[str, Any]) -> str:
        """The farm no longer runs our job: its history says how it ended."""
        sp = await self._simplyprint()
        if sp is None or self.farm_id is None:
            return "no farm"
        async with farm_session(self.ctx, self.tenant_id, sp) as client:
            page = await client.get_print_jobs(printer_ids=[self.farm_id], page_size=50)
        found = next((j for j in page.jobs if j.uid == job["farm_job_uid"]), None)
        status = HISTORY_STATUS.get(found.status) if found else None
        if status is None or status == "PRINTING":
            # Confirmed alive: not stuck again until another quiet period has passed.
            await self.pool.execute("UPDATE print_jobs SET updated_at = now() WHERE id = $1",
                                    job["id"])
            return "still running"
        at = (found.end_date or datetime.now(UTC)) if found else datetime.now(UTC)
        await self._ended(job, status, at, f"farm reports {found.status}" if found else None,
                          from_event=False, why="the printer no longer runs it")
        return status

    @step("printer.reconcile")
    async def reconcile(self, envelope: Envelope) -> str:
        """A stuck job (no update for a while): look at the printer, then at the history."""
        result = await self._look()
        self.job = await active_job(self.pool, self.printer_id)
        if self.job is not None and self.job["farm_job_uid"] is not None:
            return await self.reconcile_job(self.job)
        return result

    # --- dispatch -----------------------------------------------------------------------

    @step("printer.dispatch")
    async def dispatch(self, envelope: Envelope) -> str:
        return await self.dispatch_now()

    async def dispatch_now(self) -> str:
        if not self.checked_farm and self.farm_id is not None:
            return await self._look()  # memory came from PostgreSQL: ask SimplyPrint first
        if self.job is not None:  # an operator may have cancelled or forced it meanwhile
            self.job = await active_job(self.pool, self.printer_id)
        if self.job is not None:
            if self.job["status"] == PrintJobStatus.ASSIGNED and not self.job["farm_job_uid"]:
                return await self._start(self.job)  # a crash came between claim and start
            return "busy"
        if availability(self.state):
            return "unavailable"
        sp = await self._simplyprint()
        if sp is None or sp.dispatch_mode != "smart":
            return "not smart"
        try:
            job = await claim(self.pool, self.tenant_id, self.state)
        except PrinterBusy:
            # The last job's end is still on its way to its order: try again shortly.
            self.busy_attempts += 1
            if self.busy_attempts > 6:  # long enough for a job.status: look at the job again
                self.job = await active_job(self.pool, self.printer_id)
            tell_later(self.ctx, self._self("printer.dispatch"),
                       0.2 + backoff_delay(self.busy_attempts, base=0.2, cap=5.0, rng=self.rng))
            return "previous job not closed yet"
        self.busy_attempts = 0
        if job is None:
            return "no matching job"
        self.job = job
        return await self._start(job)

    async def _start(self, job: dict[str, Any]) -> str:
        """CreateJob, looking first: a printer already running a job we have no uid for is the
        start that a crash interrupted, so it is adopted, not started again."""
        sp = await self._simplyprint()
        if sp is None or self.farm_id is None:
            return await self._release(job, "no SimplyPrint printer")
        try:
            async with farm_session(self.ctx, self.tenant_id, sp) as client:
                printer = await client.get_printer(self.farm_id)
                if printer.job is None or not printer.job.uid:
                    if printer.state != "operational":
                        return await self._release(job, f"printer is {printer.state}")
                    file_id = await farm.ensure_uploaded(self.pool, client, job["file_id"])
                    await client.create_job(self.farm_id, file_id=file_id)
                    printer = await self._running(client)
        except PermanentError as error:
            return await self._release(job, f"SimplyPrint refused the start: {error}")
        except TransientError:
            tell_later(self.ctx, self._self("printer.dispatch"),
                       backoff_delay(2, base=1.0, cap=30.0, rng=self.rng))
            raise
        uid = printer.job.uid if printer.job else None
        farm_job = printer.job.id if printer.job else None
        await self._started(job, uid, farm_job, "started")
        return "started"

    async def _running(self, client: SimplyPrintClient) -> Printer:
        assert self.farm_id is not None
        return await client.get_printer(self.farm_id)

    async def _started(self, job: dict[str, Any], uid: str | None, farm_job: int | None,
                       how: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE print_jobs SET farm_job_uid = $2, farm_job_id = coalesce($3, farm_job_id),"
                " farm_printer_id = $4, updated_at = now() WHERE id = $1",
                job["id"], uid, farm_job, self.farm_id)
            job.update(farm_job_uid=uid, farm_printer_id=self.farm_id)
            await self._job_update(conn, job, JobUpdate(
                str(job["id"]), "PRINTING", datetime.now(UTC), None, uid, self.farm_id, None))
            await self._write(conn, {k: v for k, v in {
                "current_job_id": job["id"], "farm_job_uid": uid, "ready": False,
                "state": PrinterState.PRINTING.value}.items() if self.state.get(k) != v},
                source=f"dispatch: {how}")

    async def _job_update(self, conn: Connection, job: dict[str, Any], update: JobUpdate) -> None:
        """Order jobs go through their order (retries, progress); stock jobs change directly."""
        if job.get("order_id") is not None:
            await enqueue(conn, Envelope("order", str(job["order_id"]), "job.status",
                                         str(self.tenant_id),
                                         {**update.payload(), "order_id": str(job["order_id"])},
                                         durable=True))
            return
        row = await conn.fetchrow("SELECT * FROM print_jobs WHERE id = $1 FOR UPDATE", job["id"])
        if row is not None:
            fields: dict[str, Any] = {"status_at": update.at}
            if update.status == "PRINTING":
                fields["started_at"] = update.at
            elif update.status == "COMPLETED":
                fields["completed_at"] = update.at
            else:
                fields["error"] = update.error or update.status
            await print_jobs.set_job_status(conn, record_to_dict(row),
                                            PrintJobStatus(update.status), **fields)

    async def _release(self, job: dict[str, Any], reason: str) -> str:
        await release(self.pool, job["id"], self.printer_id, reason)
        self.job = None
        return f"released: {reason}"

    # --- controls -----------------------------------------------------------------------

    @step("printer.control")
    async def control(self, envelope: Envelope) -> str:
        """Pause, resume or cancel whatever this printer is printing."""
        action = str(envelope.payload["action"])
        sp = await self._simplyprint()
        if sp is None or self.farm_id is None:
            raise ValueError("printer is not linked to SimplyPrint")
        async with farm_session(self.ctx, self.tenant_id, sp) as client:
            if action == "pause":
                await client.pause(self.farm_id)
            elif action == "resume":
                await client.resume(self.farm_id)
            elif action == "cancel":
                comment = str(envelope.payload.get("comment") or "cancelled")[:500]
                await client.cancel(self.farm_id, reason=6, comment=comment)
            else:
                raise ValueError(f"unknown printer action {action!r}")
        return action

    async def _simplyprint(self) -> SimplyPrintSettings | None:
        settings, at = self._settings
        if settings is None or time.monotonic() - at > SETTINGS_TTL:
            settings = await load_integration(self.pool, self.tenant_id, SimplyPrintSettings)
            self._settings = (settings, time.monotonic())
        return settings
