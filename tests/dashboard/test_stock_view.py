"""The Stock view in a browser: count corrections and scrap with a reason (the reason dialog
refuses an empty one), a product's stock plan and the Stock Management settings, printing to
stock and cancelling the batch, levels that follow the live stream, and a viewer offered no
write action. Stock is set up through the REST API with an admin's key, as a client would."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Locator, Page, expect

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from tests.dashboard.conftest import SignIn
from tests.forma3d.store.stock_fixtures import product

MINUS, TIMES = "\u2212", "\u00d7"  # as the page writes them
CHANGE = f"Change (+ adds, {MINUS} removes)"


class Shop:
    """A tenant with CUBE (5 on the shelf) and BALL (minimum 2), and an admin's key."""

    def __init__(self, ingress: str, tenant_id: uuid.UUID, key: str, cube: uuid.UUID,
                 ball: uuid.UUID) -> None:
        self.ingress, self.tenant_id, self.key = ingress, tenant_id, key
        self.cube, self.ball = cube, ball

    async def api(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.request(method, f"{self.ingress}/api/v1{path}", json=body,
                                            headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code < 300, response.text
        return response


async def shop(db_pool: Pool, ingress: str) -> Shop:
    tenant_id = await create_tenant(db_pool, f"stock-{uuid.uuid4().hex[:8]}")
    cube = await product(db_pool, tenant_id, "CUBE")
    ball = await product(db_pool, tenant_id, "BALL")
    key = (await create_api_key(db_pool, tenant_id, "counter", role="admin")).key
    made = Shop(ingress, tenant_id, key, cube, ball)
    await made.api("POST", f"/stock/{cube}/adjustments", {"quantity": 5, "reason": "first count"})
    await made.api("PATCH", f"/stock/{ball}", {"minimum": 2})
    return made


async def open_stock(page: Page) -> None:
    """Through the navigation, once the first view has drawn (as a person would)."""
    await expect(page.locator("#view h1")).to_be_visible()
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Stock").click()
    await expect(page.get_by_role("heading", name="Levels")).to_be_visible()


def level(page: Page, sku: str) -> Locator:
    return page.locator(f"#st-levels tr[data-sku='{sku}']")


def ledger_rows(page: Page) -> Locator:
    return page.locator("#st-ledger tbody tr")


async def test_adjust_with_a_reason_moves_the_level_and_writes_the_ledger(
        signed_in: SignIn, db_pool: Pool, ingress: str) -> None:
    s = await shop(db_pool, ingress)
    page = await signed_in(s.tenant_id, "operator")
    await open_stock(page)
    cube = level(page, "CUBE")
    await expect(cube.locator("[data-col=on_hand]")).to_have_text("5")
    await expect(level(page, "BALL").locator("[data-standing]")).to_have_text("Below minimum")

    await page.get_by_role("button", name="Manage CUBE").click()
    panel = page.locator("#st-panel")
    await panel.get_by_label(CHANGE).fill("3")
    await panel.get_by_role("button", name="Adjust…").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(f"Add 3 {TIMES} CUBE")
    await dialog.get_by_label("Reason for the correction").fill("found a box behind the shelf")
    await dialog.get_by_role("button", name="OK").click()

    await expect(cube.locator("[data-col=on_hand]")).to_have_text("8")
    await expect(cube.locator("[data-col=available]")).to_have_text("8")
    await expect(panel.locator("#st-panel-figures [data-col=on_hand]")).to_have_text("8")
    newest = ledger_rows(page).first
    await expect(newest).to_contain_text("found a box behind the shelf")
    await expect(newest.locator("[data-type]")).to_have_text("Adjusted")
    await expect(newest.locator("[data-direction]")).to_have_text("+3")
    await expect(ledger_rows(page)).to_have_count(2)  # the first count and this one

    # Taking units away is the same form with a negative change.
    await panel.get_by_label(CHANGE).fill("-1")
    await panel.get_by_role("button", name="Adjust…").click()
    await expect(dialog).to_contain_text(f"Remove 1 {TIMES} CUBE")
    await dialog.get_by_label("Reason for the correction").fill("one was cracked in the count")
    await dialog.get_by_role("button", name="OK").click()
    await expect(cube.locator("[data-col=on_hand]")).to_have_text("7")
    await expect(ledger_rows(page).first.locator("[data-direction]")).to_have_text(f"{MINUS}1")


async def test_scrap_needs_a_reason(signed_in: SignIn, db_pool: Pool, ingress: str) -> None:
    s = await shop(db_pool, ingress)
    page = await signed_in(s.tenant_id, "operator")
    await open_stock(page)
    await page.get_by_role("button", name="Manage CUBE").click()
    panel = page.locator("#st-panel")
    await panel.get_by_label("Units to scrap").fill("2")
    await panel.get_by_role("button", name="Scrap…").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text(f"Scrap 2 {TIMES} CUBE")

    # OK without a reason is refused: the dialog stays, the reason is reported missing, and
    # nothing is scrapped.
    await dialog.get_by_role("button", name="OK").click()
    await expect(dialog).to_be_visible()
    reason = dialog.get_by_label("Why are they scrapped?")
    assert await reason.evaluate("el => el.validity.valueMissing")
    await expect(page.locator("#st-ledger [data-type=SCRAPPED]")).to_have_count(0)
    await expect(level(page, "CUBE").locator("[data-col=on_hand]")).to_have_text("5")

    await reason.fill("warped corners")
    await dialog.get_by_role("button", name="OK").click()
    await expect(dialog).to_be_hidden()
    await expect(level(page, "CUBE").locator("[data-col=on_hand]")).to_have_text("3")
    newest = ledger_rows(page).first
    await expect(newest.locator("[data-type]")).to_have_text("Scrapped")
    await expect(newest.locator("[data-direction]")).to_have_text(f"{MINUS}2")
    await expect(newest.locator("[data-col=reason]")).to_have_text("warped corners")

    # More than the shelf holds: the server's reason, and the level stays.
    await panel.get_by_label("Units to scrap").fill("9")
    await panel.get_by_role("button", name="Scrap…").click()
    await dialog.get_by_label("Why are they scrapped?").fill("all of them")
    await dialog.get_by_role("button", name="OK").click()
    await expect(page.locator(".toast.error")).to_contain_text("available")
    await expect(level(page, "CUBE").locator("[data-col=on_hand]")).to_have_text("3")


async def test_plan_settings_and_a_batch_printed_to_stock(signed_in: SignIn, db_pool: Pool,
                                                         ingress: str) -> None:
    s = await shop(db_pool, ingress)
    page = await signed_in(s.tenant_id, "owner")
    await open_stock(page)

    await page.get_by_role("button", name="Manage CUBE").click()
    plan = page.locator("#st-plan")
    await plan.get_by_label("Minimum").fill("4")
    await plan.get_by_label("Maximum").fill("12")
    await plan.get_by_label("Batch size").fill("3")
    await plan.get_by_role("button", name="Save plan").click()
    cube = level(page, "CUBE")
    await expect(cube.locator("[data-col=min_max]")).to_have_text("4 / 12")
    await expect(cube.locator("[data-col=batch_size]")).to_have_text("3")
    await plan.get_by_label("Maximum").fill("")  # no maximum: replenish up to the minimum
    await plan.get_by_role("button", name="Save plan").click()
    await expect(cube.locator("[data-col=min_max]")).to_have_text("4 / —")

    # Quiet hours that start later than this test runs: replenishment batches nothing meanwhile.
    now = datetime.now(UTC)
    start, end = ((now + timedelta(hours=h)).strftime("%H:%M") for h in (2, 3))
    settings = page.locator("#st-settings-form")
    await settings.get_by_label("Replenish below minimum automatically").check()
    await settings.get_by_label("Quiet hours from").fill(start)
    await settings.get_by_label("until").fill(end)
    await settings.get_by_role("button", name="Save settings").click()
    await expect(page.locator(".toast").last).to_have_text("Stock Management settings saved")

    # Print to stock from the product's panel, then cancel the batch with a reason.
    await page.get_by_role("button", name="Print to stock…").click()
    form = page.locator("#st-print-form")
    await expect(form.get_by_label("Units")).to_have_value("3")  # the batch size
    await form.get_by_label("Note").fill("for the market on Saturday")
    await form.get_by_role("button", name="Print to stock now").click()
    made = page.locator("#st-batches tbody tr", has_text="for the market on Saturday")
    await expect(made).to_have_attribute("data-status", "IN_PROGRESS")
    batch = page.locator(f"#st-batches tr[data-batch='{await made.get_attribute('data-batch')}']")
    await expect(cube.locator("[data-col=in_production]")).to_have_text("3")
    await batch.get_by_role("button", name=f"Cancel batch of 3 {TIMES} CUBE").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Why is it cancelled?").fill("market called off")
    await dialog.get_by_role("button", name="OK").click()
    await expect(batch).to_have_attribute("data-status", "CANCELLED")
    await expect(cube.locator("[data-col=in_production]")).to_have_text("0")

    # A product with a mapping but no stock yet is taken into stock from the same panel.
    await product(db_pool, s.tenant_id, "MUG")
    await page.reload()  # what was saved, not what the page remembers
    await open_stock(page)
    await expect(level(page, "MUG")).to_have_count(0)
    await page.get_by_label("Product to stock").select_option(label="MUG")
    await page.locator("#st-add").get_by_role("button", name="Manage").click()
    await page.locator("#st-plan").get_by_label("Minimum").fill("2")
    await page.locator("#st-plan").get_by_role("button", name="Save plan").click()
    await expect(level(page, "MUG").locator("[data-standing]")).to_have_text("Below minimum")
    settings = page.locator("#st-settings-form")
    await expect(settings.get_by_label("Replenish below minimum automatically")).to_be_checked()
    await expect(settings.get_by_label("Quiet hours from")).to_have_value(start)
    await expect(settings.get_by_label("until")).to_have_value(end)
    await expect(level(page, "CUBE").locator("[data-col=min_max]")).to_have_text("4 / —")


async def test_a_viewer_sees_levels_follow_the_stream_but_no_write_action(
        signed_in: SignIn, db_pool: Pool, ingress: str) -> None:
    s = await shop(db_pool, ingress)
    await s.api("POST", "/stock-batches", {"mapping_id": str(s.cube), "units": 2})
    page = await signed_in(s.tenant_id, "viewer")
    await open_stock(page)
    cube = level(page, "CUBE")
    await expect(cube.locator("[data-col=on_hand]")).to_have_text("5")
    await expect(page.locator("#st-batches tbody tr")).to_have_count(1)
    await expect(page.locator("#st-settings [data-setting=enabled]")).to_have_text("Off")

    view = page.locator("#view")
    for name in ("Manage", "Print to stock now", "Cancel", "Save settings", "Save plan"):
        await expect(view.get_by_role("button", name=name)).to_have_count(0)
    await expect(view.locator("form")).to_have_count(0)
    await expect(view.get_by_role("button", name="Export CSV")).to_be_visible()

    # Another user's correction reaches this page through the live stream, without a reload.
    await s.api("POST", f"/stock/{s.cube}/adjustments", {"quantity": 4, "reason": "restock"})
    await expect(cube.locator("[data-col=on_hand]")).to_have_text("9")
    await expect(ledger_rows(page).first).to_contain_text("restock")

    # The ledger narrows to one product and exports as CSV.
    await page.get_by_role("button", name="Ledger of BALL").click()
    await expect(page.locator("#st-ledger")).to_contain_text("No movements yet.")
    await page.get_by_label("Ledger of product").select_option(label="CUBE")
    await expect(ledger_rows(page)).to_have_count(2)
    async with page.expect_download() as info:
        await view.get_by_role("button", name="Export CSV").click()
    download = await info.value
    assert download.suggested_filename == "stock-ledger-cube.csv"
    text = await asyncio.to_thread(Path(await download.path()).read_text, "utf-8")
    assert [line.split(",")[2] for line in text.splitlines()[1:]] == ["ADJUSTED", "ADJUSTED"]
