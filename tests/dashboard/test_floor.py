"""The floor: printers as tiles grouped by where they stand, live from the stream; an operator
confirms a cleared bed from a tile; a viewer is offered no write action."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Locator, Page, expect

from actors.runtime import Runtime
from forma3d.db.pool import Pool
from forma3d.messaging.fleet import SyncFleet
from forma3d.store.tenants import create_tenant
from sandbox.farm import MaterialSpec, PrinterSpec
from sandbox.server import SandboxConfig
from tests.dashboard.conftest import SignIn
from tests.polling import eventually
from tests.stack import Farm, sandbox_config


@pytest.fixture
def sandbox() -> SandboxConfig:
    """Two farm printers: one to confirm, one to lose."""
    return sandbox_config(printers=[
        PrinterSpec(name="MK4 red", model="MK4",
                    materials=[MaterialSpec(type="PLA", color="Red", hex="#F44336")]),
        PrinterSpec(name="MK4 spare", model="MK4")])


def tile(page: Page, name: str) -> Locator:
    return page.locator("article.tile", has=page.get_by_role("heading", name=name, exact=True))


async def test_an_operator_confirms_a_cleared_bed_and_sees_a_printer_go_offline_live(
        signed_in: SignIn, farm: Farm, ray_runtime: Runtime) -> None:
    # The fleet sync registers the farm's printers; a printer seen for the first time has a bed
    # nobody has confirmed clear (smart dispatch starts nothing on it): it awaits a bed clear.
    assert await ray_runtime.router.call(SyncFleet(tenant_id=farm.tenant_id)) == 2
    await eventually(lambda: farm.pool.fetchval(
        "SELECT count(*) = 2 FROM printers WHERE tenant_id = $1 AND online AND NOT ready",
        farm.tenant_id), what="both printers seen online")
    page = await signed_in(farm.tenant_id, "operator")
    await page.goto("/#/floor")
    red = tile(page, "MK4 red")
    attention = page.locator('section[data-group="attention"]')
    await expect(attention.locator("article.tile")).to_have_count(2)
    await expect(red.locator(".pill").first).to_have_text("awaiting bed clear")
    await expect(red).to_contain_text("Not ready")
    await expect(red).to_contain_text("PLA Red")
    await page.evaluate("window.__sameDocument = true")

    # Telemetry frames update the tiles in place (the next sync publishes them).
    await ray_runtime.router.call(SyncFleet(tenant_id=farm.tenant_id))
    await expect(red.locator("[data-temps]")).to_contain_text("Nozzle 25 °C")

    await red.get_by_role("button", name="Confirm bed of MK4 red cleared").click()
    await expect(page.locator(".toast")).to_contain_text("Bed of MK4 red confirmed clear")
    idle = page.locator('section[data-group="idle"]')
    await expect(idle.locator("article.tile")).to_have_count(1)
    await expect(tile(page, "MK4 red")).to_contain_text("Ready")
    await expect(tile(page, "MK4 red").get_by_role("button", name="Confirm bed of MK4 red "
                                                   "cleared")).to_have_count(0)

    # The spare goes offline at the farm; the next look at the farm commits it, and the tile
    # moves to Offline without a reload.
    spare_farm_id = await farm.pool.fetchval(
        "SELECT farm_printer_id FROM printers WHERE tenant_id = $1 AND name = 'MK4 spare'",
        farm.tenant_id)
    await farm.control("simplyprint", f"printers/{spare_farm_id}", {"online": False})
    await ray_runtime.router.call(SyncFleet(tenant_id=farm.tenant_id))
    offline = page.locator('section[data-group="offline"]')
    await expect(offline.locator("article.tile")).to_have_count(1)
    await expect(offline).to_contain_text("MK4 spare")
    assert await page.evaluate("window.__sameDocument") is True


async def test_a_viewer_sees_the_floor_and_matching_but_no_write_action(
        signed_in: SignIn, db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"floor-{uuid.uuid4().hex[:8]}")
    await db_pool.execute(
        """INSERT INTO printers (id, tenant_id, name, model, nozzle_diameter, state, online,
                                 enabled, ready, materials)
           VALUES ($1, $2, 'X1C dirty', 'X1C', 0.4, 'operational', true, true, false,
                   '[{"slot": 0, "type": "PETG", "color": "Black"}]')""", uuid.uuid4(), tenant_id)
    busy, job_id, order_id, file_id = (uuid.uuid4() for _ in range(4))
    await db_pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content,"
        " estimated_seconds) VALUES ($1, $2, 'benchy.gcode', $3, 2, 'G1', 3600)",
        file_id, tenant_id, uuid.uuid4().hex)
    await db_pool.execute("INSERT INTO orders (id, tenant_id, shopify_order_id, name, status)"
                          " VALUES ($1, $2, 1, '#1042', 'PROCESSING')", order_id, tenant_id)
    await db_pool.execute(
        """INSERT INTO printers (id, tenant_id, name, model, state, online, ready)
           VALUES ($1, $2, 'MK4 busy', 'MK4', 'printing', true, false)""", busy, tenant_id)
    await db_pool.execute(
        """INSERT INTO print_jobs (id, tenant_id, job_key, order_id, copy_number, file_id, status,
                                   printer_id, started_at)
           VALUES ($1, $2, 'k', $3, 1, $4, 'PRINTING', $5, now() - interval '30 minutes')""",
        job_id, tenant_id, order_id, file_id, busy)
    await db_pool.execute("UPDATE printers SET current_job_id = $2 WHERE id = $1", busy, job_id)
    page = await signed_in(tenant_id, "viewer")
    await page.goto("/#/floor")
    printing = page.locator('section[data-group="printing"]')
    await expect(printing).to_contain_text("benchy.gcode")
    await expect(printing.get_by_role("link", name="#1042")).to_have_attribute(
        "href", f"#/orders/{order_id}")
    # No telemetry yet: estimated from the start and the file's print time (half an hour of one).
    await expect(printing.get_by_role("progressbar")).to_have_attribute(
        "aria-valuenow", re.compile(r"^5\d$"))
    await expect(printing).to_contain_text(re.compile(r"≈ 5\d % · 2?\d min left"))
    # Its bed holds the print: readiness for the next job is no warning while it prints.
    await expect(tile(page, "MK4 busy").locator("[data-ready]")).to_have_count(0)
    await expect(tile(page, "MK4 busy")).not_to_contain_text("Not ready")
    dirty = tile(page, "X1C dirty")
    await expect(dirty).to_contain_text("awaiting bed clear")
    await expect(dirty.locator('[data-ready="no"]')).to_have_text("Not ready")  # idle
    await expect(dirty).to_contain_text("PETG Black")
    await expect(page.get_by_role("button", name="Confirm bed of X1C dirty cleared")
                 ).to_have_count(0)
    await expect(dirty.get_by_role("button", name="Disable X1C dirty")).to_have_count(0)
    await expect(dirty.get_by_role("button", name="Enable X1C dirty")).to_have_count(0)
    await dirty.get_by_role("button", name="Which jobs can X1C dirty take").click()
    dialog = page.locator("dialog.floor-matching")
    await expect(dialog).to_contain_text("Takes no job now: bed not confirmed clear")
    await expect(dialog).to_contain_text("No queued jobs.")
