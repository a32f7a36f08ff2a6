"""The printer entity's handlers, called directly (no Ray) against PostgreSQL and the in-process
SimplyPrint simulator: what each writes, which events it records, what it tells."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from simplyprint_tenant import QueueJob, SimplyPrint

from forma3d.db.pool import Pool
from forma3d.domain.printing.fleet import observe_row
from forma3d.handlers import printer
from forma3d.handlers.printer import Printer, observation
from forma3d.handlers.services import Services
from forma3d.handlers.testing import stub_services
from forma3d.messaging.message import Message, parse
from forma3d.messaging.printer import (
    ControlPrinter,
    DispatchPrinter,
    FarmEvent,
    GetPrinter,
    PrinterChanges,
    ReconcilePrinter,
    ReleasePrinter,
    ResyncPrinter,
    UpdatePrinter,
)
from forma3d.store import print_jobs, printers
from forma3d.store.printers import NewPrinter

ROW = {"id": 1001, "printer": {"name": "MK4 #1", "state": "operational", "online": True,
                               "model": {"name": "Original Prusa MK4", "nozzleDia": 0.4},
                               "temps": {"current": {"tool": [215], "bed": 60}}},
       "job": None, "tags": {"material": [{"type": "PLA", "color": "Red", "ext": 0}]}}


def wired(message: Message) -> Any:
    """The message as a host receives it (through its envelope's JSON)."""
    return parse(message.envelope())


async def events(pool: Pool, tenant_id: uuid.UUID, kind: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT data FROM event_log WHERE tenant_id = $1 AND type = $2"
                            " ORDER BY occurred_at, id", tenant_id, kind)
    return [r["data"] for r in rows]


async def update(state: Printer, **changes: Any) -> dict[str, Any]:
    async with state.services.pool.acquire() as conn, conn.transaction():
        message = UpdatePrinter(tenant_id=state.tenant_id, printer_id=state.printer_id,
                                changes=PrinterChanges(**changes))
        answer: dict[str, Any] = await printer.update(state, wired(message), conn)
    return answer


async def farm_printer(services: Services, sp: SimplyPrint, name: str) -> Printer:
    """Our row for the simulator's printer `name`, ready to take work (as the fleet sync and
    an operator's bed confirmation would leave it)."""
    farm = {p.id: p.name for p in sp.farm.printers.values()}
    ids = await printers.register_farm_printers(services.pool, sp.tenant_id, farm)
    [farm_id] = [f for f, n in farm.items() if n == name]
    state = await printer.load(services, str(ids[farm_id]))
    await update(state, ready=True)
    return state


async def status_of(pool: Pool, job_id: uuid.UUID) -> str:
    status: str = await pool.fetchval("SELECT status FROM print_jobs WHERE id = $1", job_id)
    return status


# --- update and release ---------------------------------------------------------------------

async def test_an_update_is_written_logged_and_followed_by_a_dispatch(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    row = await printers.create(db_pool, tenant_id, NewPrinter("old name", model="MK4"))
    services, sender = stub_services(db_pool)
    state = await printer.load(services, str(row["id"]))

    answer = await update(state, name="new name", tags=["enclosure"])
    assert answer["name"] == "new name" and answer["tags"] == ["enclosure"]
    assert answer["model"] == "MK4"  # a field not sent is not written
    [logged] = await events(db_pool, tenant_id, "printer.changed")
    assert logged["source"] == "operator"
    assert logged["before"] == {"name": "old name", "tags": []}
    assert logged["after"] == {"name": "new name", "tags": ["enclosure"]}
    assert sender.delayed == [(DispatchPrinter(tenant_id=tenant_id, printer_id=row["id"]), 0)]

    await update(state, name="new name")  # nothing changes: nothing written, nobody told
    assert len(await events(db_pool, tenant_id, "printer.changed")) == 1
    assert len(sender.delayed) == 1
    got = await printer.get(state, GetPrinter(tenant_id=tenant_id, printer_id=row["id"]))
    assert got["name"] == "new name" and got["job_id"] is None


async def test_release_frees_a_printer_still_holding_the_forced_job(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    row = await printers.create(db_pool, tenant_id, NewPrinter("p"))
    job_id = uuid.uuid4()
    async with db_pool.acquire() as conn, conn.transaction():
        await printers.change(conn, row, {"current_job_id": job_id}, "test")
    services, sender = stub_services(db_pool)
    state = await printer.load(services, str(row["id"]))

    async def release(job: uuid.UUID) -> str:
        async with db_pool.acquire() as conn, conn.transaction():
            answer: str = await printer.release(state, wired(ReleasePrinter(
                tenant_id=tenant_id, printer_id=row["id"], print_job_id=job)), conn)
        return answer

    assert await release(uuid.uuid4()) == "not held"
    assert sender.of_type(DispatchPrinter) == []
    assert await release(job_id) == "released"
    assert state.row["current_job_id"] is None
    assert await db_pool.fetchval("SELECT current_job_id FROM printers WHERE id = $1",
                                  row["id"]) is None
    logged = await events(db_pool, tenant_id, "printer.changed")
    assert logged[-1]["after"] == {"current_job_id": None}
    assert logged[-1]["source"] == "operator"
    assert sender.of_type(DispatchPrinter) == [DispatchPrinter(tenant_id=tenant_id,
                                                               printer_id=row["id"])]
    assert await release(job_id) == "not held"  # a redelivery changes nothing


# --- observations ---------------------------------------------------------------------------

async def test_observations_write_state_on_change_only_and_back_off_when_offline(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    [printer_id] = (await printers.register_farm_printers(
        db_pool, tenant_id, {1001: "MK4 #1"})).values()
    services, sender = stub_services(db_pool)
    state = await printer.load(services, str(printer_id))

    async def observe(row: dict[str, Any]) -> str:
        seen = observe_row(row, time.time())
        answer: str = await printer.observe(state, wired(observation(tenant_id, printer_id,
                                                                     seen)))
        return answer

    assert await observe(ROW) == "unavailable"  # online and operational, but not ready
    [first] = await events(db_pool, tenant_id, "printer.changed")
    assert first["after"]["online"] is True and first["after"]["nozzle_diameter"] == "0.4"
    assert state.telemetry["temps"]["bed"] == 60
    await observe(ROW)  # the same look again: nothing written
    assert len(await events(db_pool, tenant_id, "printer.changed")) == 1
    assert services.observations.count == 2
    assert sender.of_type(ResyncPrinter) == []

    offline = {**ROW, "printer": {**ROW["printer"], "online": False}}
    before = time.time()
    await observe(offline)
    await observe(offline)  # still offline: one timer, not two
    logged = await events(db_pool, tenant_id, "printer.changed")
    assert len(logged) == 2 and logged[1]["after"]["state"] == "offline"
    row = await printers.get(db_pool, printer_id)
    assert row is not None and row["online"] is False and row["offline_since"] is not None
    [(timer, delay)] = sender.delayed
    assert timer == ResyncPrinter(tenant_id=tenant_id, printer_id=printer_id)
    assert 15 <= delay <= 15 * 1.25 and state.offline_attempts == 1
    assert state.resync_at is not None and state.resync_at >= before + 15

    await observe(ROW)
    assert state.offline_attempts == 0 and state.resync_pending is False
    row = await printers.get(db_pool, printer_id)
    assert row is not None and row["online"] is True and row["offline_since"] is None


# --- dispatch, control, resync, reconcile (the simulator) -----------------------------------

async def test_smart_dispatch_claims_the_best_fitting_job_and_starts_it(
        db_pool: Pool, simplyprint: SimplyPrint, queue_job: QueueJob) -> None:
    tenant_id = simplyprint.tenant_id
    elsewhere = await queue_job(["material:ABS"])  # fits neither printer
    job_id = await queue_job(["filament:PLA/Red"], order=True)
    services, _ = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")

    assert await printer.dispatch(red, DispatchPrinter(tenant_id=tenant_id,
                                                       printer_id=red.printer_id)) == "started"
    job = await db_pool.fetchrow("SELECT * FROM print_jobs WHERE id = $1", job_id)
    assert job["status"] == "ASSIGNED" and job["printer_id"] == red.printer_id
    [farm_job] = simplyprint.farm.jobs.values()
    assert job["farm_job_uid"] == farm_job.uid and job["farm_printer_id"] == farm_job.printer_id
    assert red.row["current_job_id"] == job_id and red.row["state"] == "printing"
    assert red.row["ready"] is False and red.row["farm_job_uid"] == farm_job.uid
    [claimed] = await events(db_pool, tenant_id, "print-job.status-changed")
    assert (claimed["print_job_id"], claimed["previous_status"], claimed["new_status"],
            claimed["printer_id"]) == (str(job_id), "QUEUED", "ASSIGNED", str(red.printer_id))
    # PRINTING is the order's to write: it hears it through the outbox.
    report = await db_pool.fetchrow(
        "SELECT * FROM outbox WHERE tenant_id = $1 AND message_type = 'job.status'", tenant_id)
    assert report["target_key"] == str(job["order_id"])
    assert report["payload"]["status"] == "PRINTING"
    assert report["payload"]["farm_job_uid"] == farm_job.uid

    assert await printer.dispatch(red, DispatchPrinter(tenant_id=tenant_id,
                                                       printer_id=red.printer_id)) == "busy"
    black = await farm_printer(services, simplyprint, "X1C black")
    assert await printer.dispatch(black, DispatchPrinter(
        tenant_id=tenant_id, printer_id=black.printer_id)) == "no matching job"
    assert await status_of(db_pool, elsewhere) == "QUEUED"
    assert len(simplyprint.farm.jobs) == 1


async def test_a_printer_holding_an_unfinished_job_retries_shortly(
        db_pool: Pool, simplyprint: SimplyPrint, queue_job: QueueJob) -> None:
    """The job's end has not reached PostgreSQL yet: the claim is refused by the one-job-per-
    printer index and the printer asks itself again on a short timer."""
    services, sender = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")
    assert await printer.resync(red, ResyncPrinter(
        tenant_id=simplyprint.tenant_id, printer_id=red.printer_id)) == "no matching job"
    held = await queue_job([])
    assert await print_jobs.claim(db_pool, simplyprint.tenant_id, red.row) is not None
    await queue_job([])
    assert await printer.dispatch(red, DispatchPrinter(
        tenant_id=simplyprint.tenant_id, printer_id=red.printer_id)
    ) == "previous job not closed yet"
    [(again, delay)] = sender.delayed[-1:]
    assert again == DispatchPrinter(tenant_id=simplyprint.tenant_id, printer_id=red.printer_id)
    assert 0.2 <= delay <= 5.2 and red.busy_attempts == 1
    assert await status_of(db_pool, held) == "ASSIGNED"


async def test_controls_reach_the_farm(db_pool: Pool, simplyprint: SimplyPrint,
                                       queue_job: QueueJob) -> None:
    tenant_id = simplyprint.tenant_id
    await queue_job([])
    services, _ = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")
    assert await printer.dispatch(red, DispatchPrinter(tenant_id=tenant_id,
                                                       printer_id=red.printer_id)) == "started"
    [farm_job] = simplyprint.farm.jobs.values()
    on_farm = simplyprint.farm.printers[farm_job.printer_id]

    async def act(action: Any) -> str:
        answer: str = await printer.control(red, wired(ControlPrinter(
            tenant_id=tenant_id, printer_id=red.printer_id, action=action,
            comment="by the test")))
        return answer

    assert await act("pause") == "pause" and on_farm.state == "paused"
    assert await act("resume") == "resume" and on_farm.state == "printing"
    assert await act("cancel") == "cancel" and farm_job.state == "cancelled"
    assert farm_job.cancel_info is not None and farm_job.cancel_info["comment"] == "by the test"


async def test_resync_asks_the_farm_and_keeps_backing_off_while_offline(
        db_pool: Pool, simplyprint: SimplyPrint) -> None:
    services, sender = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")
    assert red.farm_id is not None
    resync = ResyncPrinter(tenant_id=simplyprint.tenant_id, printer_id=red.printer_id)

    simplyprint.farm.set_online(red.farm_id, False)
    await printer.resync(red, resync)
    assert red.row["online"] is False and red.row["state"] == "offline"
    await printer.resync(red, resync)  # the timer fired; still offline: a longer one
    delays = [d for m, d in sender.delayed if isinstance(m, ResyncPrinter)]
    assert len(delays) == 2 and red.offline_attempts == 2
    assert 30 <= delays[1] <= 30 * 1.25

    simplyprint.farm.set_online(red.farm_id, True)
    assert await printer.resync(red, resync) == "no matching job"
    assert red.row["online"] is True and red.row["state"] == "operational"
    assert red.offline_attempts == 0
    # Our own look is not an observation the farm sent: no lag sample (it would be 0 by
    # construction and flatter the fleet's lag figures).
    assert services.observations.take() == {"count": 0, "lags": []}


async def test_reconcile_ends_a_job_the_farm_no_longer_runs_from_its_history(
        db_pool: Pool, simplyprint: SimplyPrint, queue_job: QueueJob) -> None:
    tenant_id = simplyprint.tenant_id
    job_id = await queue_job([])  # a stock job: its status changes here, not in an order
    services, _ = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")
    assert await printer.dispatch(red, DispatchPrinter(tenant_id=tenant_id,
                                                       printer_id=red.printer_id)) == "started"
    assert await status_of(db_pool, job_id) == "PRINTING"
    [farm_job] = simplyprint.farm.jobs.values()
    assert await printer.reconcile(red, ReconcilePrinter(
        tenant_id=tenant_id, printer_id=red.printer_id, print_job_id=job_id)) == "still running"

    simplyprint.farm.fail(farm_job)  # and no webhook tells us
    await printer.reconcile(red, ReconcilePrinter(
        tenant_id=tenant_id, printer_id=red.printer_id, print_job_id=job_id))
    job = await db_pool.fetchrow("SELECT status, error FROM print_jobs WHERE id = $1", job_id)
    assert job["status"] == "FAILED" and job["error"] == "farm reports failed"
    [entry] = await events(db_pool, tenant_id, "print-job.reconciled")
    assert entry["before"] == {"status": "PRINTING"} and entry["after"] == {"status": "FAILED"}
    assert red.job is None and red.row["current_job_id"] is None
    changes = [e["new_status"] for e in await events(db_pool, tenant_id,
                                                       "print-job.status-changed")]
    assert changes == ["ASSIGNED", "PRINTING", "FAILED"]


@pytest.mark.parametrize("event", ["job.done", "job.failed"])
async def test_a_farm_event_ending_our_job_frees_the_printer(
        db_pool: Pool, simplyprint: SimplyPrint, queue_job: QueueJob, event: str) -> None:
    tenant_id = simplyprint.tenant_id
    job_id = await queue_job([], order=True)
    services, _ = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")
    await update(red, auto_ready=True)
    assert await printer.dispatch(red, DispatchPrinter(tenant_id=tenant_id,
                                                       printer_id=red.printer_id)) == "started"
    uid = red.row["farm_job_uid"]
    await printer.farm_event(red, wired(FarmEvent(
        tenant_id=tenant_id, printer_id=red.printer_id, event=event,
        job={"uid": uid, **({"failedReason": "spaghetti"} if event == "job.failed" else {})},
        at=time.time())))
    assert red.row["current_job_id"] is None and red.row["ready"] is True
    assert red.row["state"] == "operational" and red.job is None
    reports = await db_pool.fetch(
        "SELECT payload FROM outbox WHERE tenant_id = $1 AND message_type = 'job.status'"
        " ORDER BY id", tenant_id)
    ended = reports[-1]["payload"]
    assert ended["print_job_id"] == str(job_id) and ended["farm_job_uid"] == uid
    assert (ended["status"], ended["error"]) == (
        ("COMPLETED", None) if event == "job.done" else ("FAILED", "spaghetti"))



async def test_a_start_a_crash_interrupted_and_the_farm_finished_is_adopted_not_repeated(
        db_pool: Pool, simplyprint: SimplyPrint, queue_job: QueueJob) -> None:
    tenant_id = simplyprint.tenant_id
    job_id = await queue_job([])  # a stock job: its status changes here, not in an order
    services, _ = stub_services(db_pool)
    red = await farm_printer(services, simplyprint, "MK4 red")
    assert await printer.dispatch(red, DispatchPrinter(tenant_id=tenant_id,
                                                       printer_id=red.printer_id)) == "started"
    [farm_job] = simplyprint.farm.jobs.values()
    # The host died after CreateJob and before our record of it (the state as it was then),
    # and the print ended on the farm before the printer's entity came back.
    await db_pool.execute("UPDATE print_jobs SET status = 'ASSIGNED', farm_job_uid = NULL,"
                          " farm_printer_id = NULL WHERE id = $1", job_id)
    await db_pool.execute("UPDATE printers SET farm_job_uid = NULL, state = 'operational'"
                          " WHERE id = $1", red.printer_id)
    simplyprint.farm.fail(farm_job)
    revived = await printer.load(services, str(red.printer_id))

    await printer.dispatch(revived, DispatchPrinter(tenant_id=tenant_id,
                                                    printer_id=red.printer_id))
    assert len(simplyprint.farm.jobs) == 1  # not started again
    job = await db_pool.fetchrow("SELECT status, farm_job_uid FROM print_jobs WHERE id = $1",
                                 job_id)
    assert job["farm_job_uid"] == farm_job.uid and job["status"] == "FAILED"
