"""The GridFlock view in a browser: the drawer form draws the planner's plate set as you type and
shows the tenant limit's reason for a drawer too large; a failed job is retried from the page and
its plates download; a viewer sees jobs and presets but no write action."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from playwright.async_api import Page, expect

from forma3d.db.pool import Pool
from forma3d.domain.gridflock.planner import PlanOptions
from forma3d.domain.gridflock.presets import Preset
from forma3d.domain.gridflock.profiles import get_profile
from forma3d.domain.gridflock.sku import GridRequest
from forma3d.domain.gridflock.states import GridflockStep
from forma3d.store import gridflock, gridflock_presets
from forma3d.store.tenants import create_tenant
from tests.dashboard.conftest import SignIn
from tests.forma3d.store.stock_fixtures import product


def drawer(width: float, depth: float, profile: str = "bambu-a1") -> GridRequest:
    return GridRequest(width, depth, PlanOptions(), get_profile(profile))


async def failed_job(db_pool: Pool, tenant_id: uuid.UUID, request: GridRequest,
                     plates: list[dict[str, object]]) -> gridflock.GridflockJob:
    """The size's job, failed at slicing through the store's own status change. Its SKU has a
    product mapping (made by hand meanwhile), so a retry completes it without running tools."""
    await product(db_pool, tenant_id, request.sku)
    job_id = uuid.uuid4()
    async with db_pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO gridflock_jobs (id, tenant_id, sku, printer_profile, plan, plates)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *", job_id, tenant_id, request.sku,
            request.profile.id, request.plan().as_dict(), plates)
        assert row is not None
        return await gridflock.fail(conn, gridflock.GridflockJob.of(row), GridflockStep.SLICING,
                                    "slicer exited with status 1: bed too small for plate 2")


async def open_gridflock(page: Page) -> None:
    """Through the navigation, once the first view has drawn (as a person would)."""
    await expect(page.locator("#view h1")).to_be_visible()
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="GridFlock").click()
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()


async def test_the_preview_draws_the_plates_as_you_type_and_names_the_limit(
        signed_in: SignIn, db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"grid-{uuid.uuid4().hex[:8]}")
    page = await signed_in(tenant_id, "catalogue_manager")
    await open_gridflock(page)
    form = page.locator("#gf-form")
    plates = page.locator("#gf-drawing .gf-plan .plate")

    await form.get_by_label("Printer").select_option("prusa-mk4")
    for width, depth in ((300, 300), (523, 387), (640, 180)):
        for name, value in (("Width (mm)", width), ("Depth (mm)", depth)):
            await form.get_by_label(name).fill("")
            await form.get_by_label(name).press_sequentially(str(value), delay=30)
        plan = drawer(width, depth, "prusa-mk4").plan()
        await expect(page.locator("[data-total-plates]")).to_have_text(str(plan.total_plates))
        await expect(plates).to_have_count(plan.total_plates)
        await expect(page.locator("#gf-summary")).to_contain_text(
            drawer(width, depth, "prusa-mk4").sku)
        numbers = sorted({int(n) for n in await plates.evaluate_all(
            "els => els.map(e => e.dataset.number)")})
        assert numbers == [p.number for p in plan.plates]

    await form.get_by_label("Width (mm)").fill("")
    await form.get_by_label("Width (mm)").press_sequentially("1100", delay=30)
    refused = page.locator("#gf-summary [role=alert]")
    await expect(refused).to_contain_text("1100 mm is outside the allowed range 100 to 1000 mm")
    await expect(refused).to_contain_text("gridflock_max_mm")
    await expect(page.locator("#gf-drawing")).to_have_class("gf-drawing stale")

    await form.get_by_label("Width (mm)").fill("500")  # back within the limits: drawn again
    await expect(plates).to_have_count(drawer(500, 180, "prusa-mk4").plan().total_plates)
    await expect(refused).to_have_count(0)


async def test_a_failed_job_is_retried_from_the_page_and_its_plates_download(
        signed_in: SignIn, db_pool: Pool, tmp_path: Path) -> None:
    tenant_id = await create_tenant(db_pool, f"grid-{uuid.uuid4().hex[:8]}")
    stl = tmp_path / "plate1.stl"
    stl.write_bytes(b"solid plate1\nendsolid plate1\n")
    request = drawer(400, 300)
    job = await failed_job(db_pool, tenant_id, request, [{"number": 1, "stl_path": str(stl)}])
    page = await signed_in(tenant_id, "operator")
    await open_gridflock(page)
    row = page.locator(f"tr[data-job='{job.id}']")
    await expect(row).to_have_attribute("data-status", "FAILED")
    await expect(row.locator(".gf-step.failed")).to_have_text("Slice")
    await expect(row).to_contain_text("bed too small for plate 2")
    await expect(page.get_by_role("button", name="Plan with preset")).to_have_count(0)
    await expect(page.locator("#gf-form")).to_have_count(0)  # operators do not plan drawers

    await row.get_by_role("button", name=f"Retry {request.sku}").click()
    await expect(page.locator(".toast").last).to_have_text(f"Retry of {request.sku} queued")
    # The job's entity takes it back to PENDING (one more attempt) and, as the size has a
    # mapping by now, completes it: the page follows through the live stream.
    await expect(row.locator("[data-attempts]")).to_have_text("1")
    await expect(row).to_have_attribute("data-status", "COMPLETED")
    await expect(row.get_by_role("button", name=f"Retry {request.sku}")).to_have_count(0)

    await row.get_by_role("link", name=request.sku).click()
    head = page.locator(".gf-job-head")
    await expect(head).to_have_attribute("data-status", "COMPLETED")
    await expect(page.locator("#view .gf-plan .plate")).to_have_count(request.plan().total_plates)
    await expect(page.locator("tr[data-plate-row]")).to_have_count(len(request.plan().plates))
    await expect(page.get_by_role("button", name="Download plate 2 STL")).to_be_disabled()
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download plate 1 STL").click()
    download = await info.value
    assert download.suggested_filename == f"{request.sku.lower()}-plate1.stl"
    assert await asyncio.to_thread(Path(await download.path()).read_bytes) == stl.read_bytes()


async def test_a_viewer_sees_jobs_and_presets_but_no_write_action(
        signed_in: SignIn, db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"grid-{uuid.uuid4().hex[:8]}")
    job = await failed_job(db_pool, tenant_id, drawer(350, 350), [])
    await gridflock_presets.create_preset(db_pool, tenant_id, Preset(
        name="mk4_magnets", printer_profile="prusa-mk4", magnets=True, brim_mm=3))
    page = await signed_in(tenant_id, "viewer")
    await open_gridflock(page)
    row = page.locator(f"tr[data-job='{job.id}']")
    await expect(row).to_have_attribute("data-status", "FAILED")
    await expect(page.locator("#gf-presets")).to_contain_text("mk4_magnets")
    await expect(page.locator("#gf-presets")).to_contain_text("prusa-mk4")
    await expect(page.locator("#gf-form-slot")).to_contain_text("not plan drawers")
    view = page.locator("#view")
    for name in ("Retry", "Plan with preset"):
        await expect(view.get_by_role("button", name=name)).to_have_count(0)
    await expect(view.locator("input, select")).to_have_count(0)

    await page.get_by_role("tab", name="Completed").click()
    await expect(page.locator("#gf-jobs")).to_contain_text("No jobs in this state.")
    await page.get_by_role("tab", name="Failed").click()
    await expect(row).to_be_visible()
    await row.get_by_role("link").click()
    await expect(page.locator(".gf-job-error")).to_contain_text("Failed at Slice")
    await expect(view.get_by_role("button", name="Retry")).to_have_count(0)
