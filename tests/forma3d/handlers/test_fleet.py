"""The fleet entity's handlers, called directly (no Ray) against PostgreSQL and the in-process
SimplyPrint simulator: the sync registers farm printers once and feeds each its row; a wake-up
reaches only printers that can take work."""

from __future__ import annotations

import uuid

from simplyprint_tenant import QueueJob, SimplyPrint

from forma3d.db.pool import Pool
from forma3d.handlers import fleet
from forma3d.handlers.testing import stub_services
from forma3d.messaging.fleet import FleetStatus, HostObservations, SyncFleet, WakeFleet
from forma3d.messaging.printer import DispatchPrinter, ObservePrinter, ReconcilePrinter
from forma3d.store import print_jobs, printers
from forma3d.store.printers import NewPrinter


async def test_sync_registers_farm_printers_once_and_tells_each_its_row(
        db_pool: Pool, simplyprint: SimplyPrint) -> None:
    tenant_id = simplyprint.tenant_id
    services, sender = stub_services(db_pool)
    state = await fleet.load(services, str(tenant_id))
    sync = SyncFleet(tenant_id=tenant_id)

    assert await fleet.sync(state, sync) == 2
    rows = await db_pool.fetch("SELECT id, name, farm_printer_id FROM printers"
                               " WHERE tenant_id = $1 ORDER BY farm_printer_id", tenant_id)
    farm = simplyprint.farm.printers
    assert [(r["farm_printer_id"], r["name"]) for r in rows] == [
        (p.id, p.name) for p in sorted(farm.values(), key=lambda p: p.id)]
    told = sender.of_type(ObservePrinter)
    assert {(m.printer_id, m.farm_printer_id) for m in told} == {
        (r["id"], r["farm_printer_id"]) for r in rows}
    assert all(m.state["online"] is True and m.state["state"] == "operational" for m in told)

    assert await fleet.sync(state, sync) == 2  # known printers are not registered again
    assert await db_pool.fetchval("SELECT count(*) FROM printers WHERE tenant_id = $1",
                                  tenant_id) == 2
    assert len(sender.of_type(ObservePrinter)) == 4
    assert {m.printer_id for m in sender.of_type(ObservePrinter)} == {r["id"] for r in rows}
    assert await fleet.status(state, FleetStatus(tenant_id=tenant_id)) == {
        "tenant_id": str(tenant_id), "synced": 2}


async def test_sync_asks_the_printer_of_a_stuck_job_to_reconcile_it(
        db_pool: Pool, simplyprint: SimplyPrint, queue_job: QueueJob) -> None:
    tenant_id = simplyprint.tenant_id
    services, sender = stub_services(db_pool)
    state = await fleet.load(services, str(tenant_id))
    await fleet.sync(state, SyncFleet(tenant_id=tenant_id))
    row = await db_pool.fetchrow("SELECT * FROM printers WHERE tenant_id = $1 LIMIT 1",
                                 tenant_id)
    async with db_pool.acquire() as conn:
        other = await printers.create(conn, tenant_id, NewPrinter("other"))
    stuck = await queue_job([])
    assert (await print_jobs.claim(db_pool, tenant_id, dict(row.items())))["id"] == stuck
    fresh = await queue_job([])
    assert (await print_jobs.claim(db_pool, tenant_id, other))["id"] == fresh
    await db_pool.execute("UPDATE print_jobs SET updated_at = now() - interval '2 hours'"
                          " WHERE id = $1", stuck)

    await fleet.sync(state, SyncFleet(tenant_id=tenant_id))
    assert sender.of_type(ReconcilePrinter) == [ReconcilePrinter(
        tenant_id=tenant_id, printer_id=row["id"], print_job_id=stuck)]


async def test_wake_reaches_only_idle_ready_online_printers(
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    async with db_pool.acquire() as conn:
        idle = await printers.create(conn, tenant_id, NewPrinter("idle"))
        dirty = await printers.create(conn, tenant_id, NewPrinter("dirty"))
        off = await printers.create(conn, tenant_id, NewPrinter("off", enabled=False))
        live = {"online": True, "state": "operational", "ready": True}
        await printers.change(conn, idle, live, "test")
        await printers.change(conn, dirty, live | {"ready": False}, "test")
        await printers.change(conn, off, live, "test")
    services, sender = stub_services(db_pool)
    state = await fleet.load(services, str(tenant_id))

    assert await fleet.wake(state, WakeFleet(tenant_id=tenant_id)) == 1
    assert sender.told == [DispatchPrinter(tenant_id=tenant_id, printer_id=idle["id"])]


async def test_host_observations_are_taken_once(db_pool: Pool, tenant_id: uuid.UUID) -> None:
    services, _ = stub_services(db_pool)
    services.observations.add(0.25)
    state = await fleet.load(services, str(tenant_id))
    asked = HostObservations(tenant_id=tenant_id)
    assert await fleet.host_observations(state, asked) == {"host": 0, "count": 1,
                                                           "lags": [0.25]}
    assert await fleet.host_observations(state, asked) == {"host": 0, "count": 0, "lags": []}
