"""The fleet entity: one per tenant; registers farm printers and feeds every printer entity.

Its messages come from the fleet clock (actors.fleet_clock): a periodic printers/Get sync and a
wake-up when work is queued. Both fan out as non-durable tells: losing one costs a few seconds
until the next sync, never a job; everything a job depends on goes through PostgreSQL and the
outbox.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from forma3d.domain.printing.fleet import observe_row
from forma3d.handlers.printer import observation
from forma3d.handlers.registry import EntitySpec, Handlers
from forma3d.handlers.services import Services
from forma3d.integrations.settings import SimplyPrintSettings
from forma3d.messaging.fleet import FleetStatus, HostObservations, SyncFleet, WakeFleet
from forma3d.messaging.printer import DispatchPrinter, ReconcilePrinter
from forma3d.store import printers
from forma3d.store.integrations import load_integration

# Jobs on a printer with no change for the tenant's `stuck_job_seconds` (default 30 min).
STUCK = """SELECT j.id, j.printer_id FROM print_jobs j JOIN tenants t ON t.id = j.tenant_id
    WHERE j.tenant_id = $1 AND j.status IN ('ASSIGNED', 'PRINTING') AND j.printer_id IS NOT NULL
      AND j.updated_at < now() - make_interval(secs =>
          coalesce((t.settings->>'stuck_job_seconds')::float8, 1800))"""
IDLE = """SELECT p.id FROM printers p WHERE p.tenant_id = $1 AND p.online AND p.enabled
    AND p.ready AND p.state = 'operational' AND p.current_job_id IS NULL"""


@dataclass
class Fleet:
    services: Services
    tenant_id: uuid.UUID
    synced: int = 0


async def load(services: Services, key: str) -> Fleet:
    return Fleet(services, uuid.UUID(key))


HANDLERS: Handlers[Fleet] = Handlers()


@HANDLERS.step(SyncFleet)
async def sync(fleet: Fleet, message: SyncFleet) -> int:
    """Every farm printer gets its row (created on first sight) and its printers/Get row as an
    observation; printers holding a stuck job check it. Returns the printers reached."""
    services = fleet.services
    sp = await load_integration(services.pool, fleet.tenant_id, SimplyPrintSettings)
    if sp is None:
        return 0
    async with services.farm.session(fleet.tenant_id, sp) as client:
        farm = await client.all_printers()
    now = time.time()
    ids = await printers.register_farm_printers(services.pool, fleet.tenant_id,
                                                {p.id: p.name for p in farm})
    fleet.synced += 1
    reached = await services.sender.tell_many([
        observation(fleet.tenant_id, ids[p.id], observe_row(p.raw, now)) for p in farm])
    stuck = await services.pool.fetch(STUCK, fleet.tenant_id)
    await services.sender.tell_many([
        ReconcilePrinter(tenant_id=fleet.tenant_id, printer_id=r["printer_id"],
                         print_job_id=r["id"]) for r in stuck])
    return reached


@HANDLERS.step(WakeFleet)
async def wake(fleet: Fleet, message: WakeFleet) -> int:
    """Ask every idle, enabled, ready, online printer to pull a job (new work arrived)."""
    rows = await fleet.services.pool.fetch(IDLE, fleet.tenant_id)
    return await fleet.services.sender.tell_many([
        DispatchPrinter(tenant_id=fleet.tenant_id, printer_id=r["id"]) for r in rows])


@HANDLERS.query(FleetStatus)
async def status(fleet: Fleet, message: FleetStatus) -> dict[str, Any]:
    return {"tenant_id": str(fleet.tenant_id), "synced": fleet.synced}


@HANDLERS.query(HostObservations)
async def host_observations(fleet: Fleet, message: HostObservations) -> dict[str, Any]:
    """This host's observation count and lag samples (taken, then reset): for benchmarks."""
    return {"host": fleet.services.host_index, **fleet.services.observations.take()}


ENTITY = EntitySpec("fleet", load, HANDLERS)
