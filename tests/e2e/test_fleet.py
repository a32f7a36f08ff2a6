"""Smart dispatch end to end: a mixed farm pulls a mixed order stream from our queue, every job
on a printer its tags fit; and a printer's host dies mid-print without losing or doubling a job."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.domain.printing.matching import fits
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.fleet import SyncFleet
from forma3d.messaging.printer import (
    DispatchPrinter,
    GetPrinter,
    PrinterChanges,
    UpdatePrinter,
)
from forma3d.store.apikeys import create_api_key
from forma3d.store.integrations import load_integration, save_integration
from forma3d.store.tenants import create_tenant
from sandbox.farm import MaterialSpec, PrinterSpec
from sandbox.server import serve_sandboxes
from sandbox.tenant import seed_catalog
from tests.e2e.conftest import Farm, connect, sandbox_config
from tests.polling import eventually

pytestmark = pytest.mark.ray

# Parts' required tags: material and colour per part, a nozzle for the vase, a model (as
# SimplyPrint names it) for the bin.
TAGS = {"BENCHY-PLA-RED": ["filament:PLA/Red"],
        "VASE-SPIRAL-PLA-WHITE": ["filament:PLA/White", "nozzle:0.6"],
        "GRID-BIN-2X3-PETG-BLACK": ["filament:PETG/Black", "model:X1 Carbon"],
        "PLANTER-HEX-PLA-GREEN": ["material:PLA", "color:Green"]}


def mat(kind: str, colour: str) -> list[MaterialSpec]:
    return [MaterialSpec(type=kind, color=colour)]


MIXED = [PrinterSpec(name="MK4 red", model="MK4", materials=mat("PLA", "Red")),
         PrinterSpec(name="MK4 white 0.6", model="MK4", nozzle=0.6, materials=mat("PLA", "White")),
         PrinterSpec(name="MK4 white 0.4", model="MK4", materials=mat("PLA", "White")),
         PrinterSpec(name="X1C black", model="X1C", materials=mat("PETG", "Black")),
         PrinterSpec(name="MK4 black PETG", model="MK4", materials=mat("PETG", "Black")),
         PrinterSpec(name="X1C green", model="X1C", materials=mat("PLA", "Green")),
         PrinterSpec(name="X1C red", model="X1C", materials=mat("PLA", "Red"))]


async def smart_farm(db_pool: Pool, ingress: str, runtime: Runtime, printers: list[PrinterSpec],
                     speedup: float) -> tuple[Farm, list[uuid.UUID]]:
    config = sandbox_config()
    config.speedup = speedup
    config.simplyprint.printers = printers
    running = await serve_sandboxes(config)
    tenant_id = await create_tenant(db_pool, f"fleet-{uuid.uuid4().hex[:10]}")
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
        for sku, tags in TAGS.items():
            await conn.execute(
                """UPDATE mapping_parts SET required_tags = $3 WHERE tenant_id = $1 AND mapping_id
                   = (SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2)""",
                tenant_id, sku, tags)
    await connect(db_pool, ingress, tenant_id, running, config)
    sp = await load_integration(db_pool, tenant_id, SimplyPrintSettings)
    assert sp is not None
    await save_integration(db_pool, tenant_id, sp.model_copy(update={"dispatch_mode": "smart"}))
    synced = await runtime.router.call(SyncFleet(tenant_id=tenant_id))
    assert synced == len(printers)
    ids = [r["id"] for r in await db_pool.fetch(
        "SELECT id FROM printers WHERE tenant_id = $1 ORDER BY farm_printer_id", tenant_id)]
    for printer_id in ids:  # these printers clear their own beds; the operator confirms once
        await runtime.router.call(UpdatePrinter(
            tenant_id=tenant_id, printer_id=printer_id,
            changes=PrinterChanges(auto_ready=True, ready=True)))
    return Farm(tenant_id, db_pool, running, parts), ids


@pytest.fixture
async def stopper() -> AsyncIterator[list[Farm]]:
    farms: list[Farm] = []
    yield farms
    for farm in farms:
        await farm.sandboxes.stop()


async def test_mixed_farm_prints_every_job_on_a_matching_printer(
        db_pool: Pool, ingress: str, ray_runtime: Runtime, stopper: list[Farm]) -> None:
    farm, _ = await smart_farm(db_pool, ingress, ray_runtime, MIXED, speedup=3600)
    stopper.append(farm)
    mix = [[("BENCHY-PLA-RED", 2)], [("VASE-SPIRAL-PLA-WHITE", 1)],
           [("GRID-BIN-2X3-PETG-BLACK", 2), ("PLANTER-HEX-PLA-GREEN", 1)],
           [("BENCHY-PLA-RED", 1), ("PLANTER-HEX-PLA-GREEN", 1)], [("VASE-SPIRAL-PLA-WHITE", 2)]]
    orders = [farm.send_order(lines) for lines in mix]
    final = await farm.wait(orders, {"FULFILLED", "FAILED", "CANCELLED", "ON_HOLD"}, timeout=150)
    assert set(final.values()) == {"FULFILLED"}, final

    jobs = await db_pool.fetch(
        """SELECT j.id, j.status, j.required_tags, j.farm_job_uid, p.model, p.nozzle_diameter,
                  p.materials, p.tags, p.farm_printer_id
           FROM print_jobs j JOIN printers p ON p.id = j.printer_id WHERE j.tenant_id = $1""",
        farm.tenant_id)
    expected = sum(farm.parts_per_unit[sku] * qty for lines in mix for sku, qty in lines)
    assert len(jobs) == expected
    assert {j["status"] for j in jobs} == {"COMPLETED"}
    for job in jobs:
        assert job["required_tags"], "every catalog part carries required tags"
        assert fits(dict(job), job["required_tags"]), dict(job)
    farm_jobs = farm.sandboxes.sandboxes.simplyprint.farm.jobs.values()
    started = {j.uid: j.printer_id for j in farm_jobs}
    assert len(started) == expected  # one farm job per print job: nothing started twice
    assert {j["farm_job_uid"] for j in jobs} == set(started)
    assert all(started[j["farm_job_uid"]] == j["farm_printer_id"] for j in jobs)


async def test_killing_the_host_of_a_printing_printer_loses_and_doubles_nothing(
        db_pool: Pool, ingress: str, ray_runtime: Runtime, stopper: list[Farm]) -> None:
    printer = PrinterSpec(name="MK4 red", model="MK4", materials=mat("PLA", "Red"))
    farm, [printer_id] = await smart_farm(db_pool, ingress, ray_runtime, [printer], speedup=1)
    stopper.append(farm)
    order = farm.send_order([("BENCHY-PLA-RED", 2)])

    async def printing() -> Any:
        return await db_pool.fetchrow("SELECT id FROM print_jobs WHERE tenant_id = $1"
                                      " AND status = 'PRINTING'", farm.tenant_id)

    first = (await eventually(printing))["id"]
    envelope = GetPrinter(tenant_id=farm.tenant_id, printer_id=printer_id).envelope()
    host = ray_runtime.router.host_for(envelope)
    assert await host.has_entity.remote(envelope.address)
    pid = (await host.status.remote())["pid"]
    os.kill(pid, signal.SIGKILL)

    async def restarted() -> Any:
        try:
            return (await host.status.remote())["pid"] != pid
        except Exception:
            return False

    await eventually(restarted)
    state = await ray_runtime.router.ask(envelope)  # rebuilt from PostgreSQL on activation
    assert state["job_id"] == first and state["current_job_id"] == first
    assert state["state"] == "printing"
    # A look at SimplyPrint (the sync) agrees, and the second job waits for the printer.
    assert await ray_runtime.router.call(SyncFleet(tenant_id=farm.tenant_id)) == 1
    assert await ray_runtime.router.call(DispatchPrinter(
        tenant_id=farm.tenant_id, printer_id=printer_id)) == "busy"
    queued = await db_pool.fetchval("SELECT count(*) FROM print_jobs WHERE tenant_id = $1"
                                    " AND status = 'QUEUED'", farm.tenant_id)
    assert queued == 1

    async with httpx.AsyncClient() as client:  # finish the prints quickly now
        await client.post(f"{farm.sandboxes.urls['simplyprint']}/_sandbox/clock",
                          json={"speedup": 3600})
    final = await farm.wait([order], {"FULFILLED", "FAILED", "CANCELLED"}, timeout=90)
    assert final == {order: "FULFILLED"}
    farm_jobs = list(farm.sandboxes.sandboxes.simplyprint.farm.jobs.values())
    assert len(farm_jobs) == 2 and {j.state for j in farm_jobs} == {"done"}
    uids = await db_pool.fetch("SELECT farm_job_uid FROM print_jobs WHERE tenant_id = $1",
                               farm.tenant_id)
    assert {r["farm_job_uid"] for r in uids} == {j.uid for j in farm_jobs}


async def test_lost_farm_webhooks_are_reconciled_from_the_printer_and_job_history(
        db_pool: Pool, ingress: str, ray_runtime: Runtime, stopper: list[Farm]) -> None:
    printer = PrinterSpec(name="MK4 red", model="MK4", materials=mat("PLA", "Red"))
    farm, [printer_id] = await smart_farm(db_pool, ingress, ray_runtime, [printer], speedup=3600)
    stopper.append(farm)
    await farm.control("simplyprint", "webhooks", {"loss_rate": 1.0})  # we hear nothing back
    order = farm.send_order([("BENCHY-PLA-RED", 1)])

    async def printing() -> Any:
        return await db_pool.fetchrow("SELECT id FROM print_jobs WHERE tenant_id = $1"
                                      " AND status = 'PRINTING'", farm.tenant_id)

    job_id = (await eventually(printing))["id"]
    farm_jobs = farm.sandboxes.sandboxes.simplyprint.farm.jobs.values()
    await eventually(lambda: _all_done(farm_jobs))
    # The sync sees an idle printer where our job was: the history says how it ended.
    async def synced_completed() -> bool:
        await ray_runtime.router.call(SyncFleet(tenant_id=farm.tenant_id))
        status = await db_pool.fetchval("SELECT status FROM print_jobs WHERE id = $1", job_id)
        return bool(status == "COMPLETED")

    await eventually(synced_completed, timeout=60, interval=0.2, what="job reconciled")
    final = await farm.wait([order], {"FULFILLED", "FAILED", "CANCELLED"}, timeout=60)
    assert final == {order: "FULFILLED"}
    [entry] = await db_pool.fetch(
        "SELECT data FROM event_log WHERE tenant_id = $1 AND type = 'print-job.reconciled'",
        farm.tenant_id)
    assert entry["data"]["before"] == {"status": "PRINTING"}
    assert entry["data"]["after"] == {"status": "COMPLETED"}
    state = await ray_runtime.router.call(GetPrinter(tenant_id=farm.tenant_id,
                                                     printer_id=printer_id))
    assert state["current_job_id"] is None and state["state"] == "operational"


async def _all_done(jobs: Any) -> bool:
    return bool(list(jobs)) and all(j.state == "done" for j in jobs)


async def test_an_operator_pauses_resumes_and_cancels_a_print_through_the_api(
        db_pool: Pool, ingress: str, ray_runtime: Runtime, stopper: list[Farm]) -> None:
    """The REST writes that control a printer, end to end: route → entity → SimplyPrint."""
    printer = PrinterSpec(name="MK4 red", model="MK4", materials=mat("PLA", "Red"))
    farm, _ = await smart_farm(db_pool, ingress, ray_runtime, [printer], speedup=1)
    stopper.append(farm)
    key = (await create_api_key(db_pool, farm.tenant_id, "operator")).key
    order = farm.send_order([("BENCHY-PLA-RED", 1)])
    simulated = farm.sandboxes.sandboxes.simplyprint.farm

    async def printing() -> Any:
        return await db_pool.fetchval("SELECT id FROM print_jobs WHERE tenant_id = $1"
                                      " AND status = 'PRINTING'", farm.tenant_id)

    job_id = await eventually(printing, what="a job printing")
    [running] = simulated.jobs.values()

    async def on_farm(state: str) -> bool:
        return running.state == state

    async with httpx.AsyncClient(base_url=f"{ingress}/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        paused = await api.post(f"/print-jobs/{job_id}/pause")
        assert paused.status_code == 200, paused.text
        await eventually(lambda: on_farm("paused"), what="the print paused on the farm")
        resumed = await api.post(f"/print-jobs/{job_id}/resume")
        assert resumed.status_code == 200, resumed.text
        await eventually(lambda: on_farm("printing"), what="the print resumed on the farm")
        cancelled = await api.post(f"/print-jobs/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"
        await eventually(lambda: on_farm("cancelled"), what="the print stopped on the farm")
        shown = await api.get(f"/print-jobs/{job_id}")
        assert shown.json()["status"] == "CANCELLED"
    assert await farm.wait([order], {"FAILED"}, timeout=60) == {order: "FAILED"}
    actions = [r["data"]["action"] for r in await db_pool.fetch(
        "SELECT data FROM event_log WHERE tenant_id = $1 AND type = 'print-job.queue-changed'"
        " ORDER BY occurred_at, id", farm.tenant_id)]
    assert actions == ["pause", "resume", "cancel"]
