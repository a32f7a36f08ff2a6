"""The orders view: the list and an order's page follow the farm live (received to fulfilled
without a reload), hold, release and cancel take a reason, and an order entered by hand is
listed. Orders come from the sandbox shop (`farm`); the farm's auto-print holds jobs in its queue
where a test needs an order that stays open."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Locator, Page, expect

from forma3d.db.pool import Pool
from forma3d.store.tenants import create_tenant
from sandbox.tenant import seed_catalog
from tests.dashboard.conftest import SignIn
from tests.stack import Farm

pytestmark = pytest.mark.ray
TIMES = "\N{MULTIPLICATION SIGN}"  # the page writes quantities as "2 (times) part"


async def order_id_of(farm: Farm, shopify_id: int, status: str) -> str:
    """Our id of a shop order once it is `status` (the farm's wait is bounded)."""
    await farm.wait([shopify_id], {status})
    row = await farm.pool.fetchval(
        "SELECT id FROM orders WHERE tenant_id = $1 AND shopify_order_id = $2",
        farm.tenant_id, shopify_id)
    return str(row)


def status_pill(page: Page) -> Locator:
    return page.locator("#ord-status .pill")


async def answer_dialog(page: Page, reason: str) -> None:
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("textbox").fill(reason)
    await dialog.get_by_role("button", name="OK").click()
    await expect(dialog).to_be_hidden()


async def test_an_order_goes_from_received_to_fulfilled_without_a_reload(
        farm: Farm, signed_in: SignIn) -> None:
    await farm.control("simplyprint", "farm", {"auto_print": False})  # it waits on the farm
    page = await signed_in(farm.tenant_id, "operator")
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Orders").click()
    await expect(page.locator("#ord-list")).to_be_visible()

    shopify_id = farm.send_order([("BENCHY-PLA-RED", 1)])
    row = page.locator("#ord-list tr[data-order]").first
    await expect(row).to_be_visible()  # the list shows the new order by itself
    await row.get_by_role("link").click()
    await expect(status_pill(page)).to_have_attribute("data-status",
                                                      re.compile("PENDING|PROCESSING"))
    await expect(page.locator("#ord-jobs tr[data-job]")).to_have_count(
        farm.parts_per_unit["BENCHY-PLA-RED"])
    timeline = page.locator(".ord-timeline li")
    await expect(timeline.first).to_be_visible()
    before = await timeline.count()

    await farm.control("simplyprint", "farm", {"auto_print": True})
    await expect(status_pill(page)).to_have_attribute("data-status", "FULFILLED", timeout=60_000)
    await expect(status_pill(page)).to_have_text("Fulfilled")
    assert await timeline.count() > before
    await expect(page.locator(".ord-timeline li[data-type='order.fulfilled']")).to_have_count(1)
    await expect(page.locator("#ord-jobs .pill[data-status='COMPLETED']")).to_have_count(
        farm.parts_per_unit["BENCHY-PLA-RED"])
    await expect(page.locator("#ord-shipment [data-tracking]")).not_to_be_empty()
    async with page.expect_download() as download:
        await page.get_by_role("button", name="Download label (PDF)").click()
    assert (await download.value).suggested_filename.endswith(".pdf")
    assert await farm.statuses() == {shopify_id: "FULFILLED"}


async def test_hold_then_release_with_a_reason(farm: Farm, signed_in: SignIn) -> None:
    await farm.control("simplyprint", "farm", {"auto_print": False})
    order_id = await order_id_of(farm, farm.send_order([("VASE-SPIRAL-PLA-WHITE", 1)]),
                                 "PROCESSING")
    page = await signed_in(farm.tenant_id, "operator")
    await page.goto(f"/#/orders/{order_id}")
    await expect(status_pill(page)).to_have_attribute("data-status", "PROCESSING")

    await page.get_by_role("button", name="Hold").click()
    await answer_dialog(page, "address to be confirmed")
    await expect(status_pill(page)).to_have_attribute("data-status", "ON_HOLD")
    await expect(page.locator("#ord-reason")).to_contain_text("address to be confirmed")
    await expect(page.locator(".ord-timeline li[data-type='order.held']")).to_contain_text(
        "address to be confirmed")
    await expect(page.get_by_role("button", name="Hold")).to_have_count(0)

    await page.get_by_role("button", name="Release").click()
    await expect(status_pill(page)).to_have_attribute("data-status", "PROCESSING")
    await expect(page.locator("#ord-reason")).to_have_count(0)
    await expect(page.locator(".ord-timeline li[data-type='order.released']")).to_have_count(1)
    await expect(page.get_by_role("button", name="Release")).to_have_count(0)


async def test_cancel_with_a_reason(farm: Farm, signed_in: SignIn) -> None:
    await farm.control("simplyprint", "farm", {"auto_print": False})
    order_id = await order_id_of(farm, farm.send_order([("BENCHY-PLA-RED", 2)]), "PROCESSING")
    page = await signed_in(farm.tenant_id, "operator")
    await page.goto(f"/#/orders/{order_id}")
    await page.get_by_role("button", name="Cancel order").click()
    await answer_dialog(page, "customer changed their mind")
    await expect(status_pill(page)).to_have_attribute("data-status", "CANCELLED")
    await expect(page.locator(".ord-timeline li[data-type='order.cancelled']")).to_contain_text(
        "customer changed their mind")
    await expect(page.locator("#ord-jobs .pill[data-status='CANCELLED']")).to_have_count(
        2 * farm.parts_per_unit["BENCHY-PLA-RED"])
    for action in ("Hold", "Cancel order", "Release"):
        await expect(page.get_by_role("button", name=action)).to_have_count(0)


async def test_an_order_entered_by_hand_is_listed(signed_in: SignIn, db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"orders-{uuid.uuid4().hex[:8]}")
    async with db_pool.acquire() as conn:
        await seed_catalog(conn, tenant_id)
    page = await signed_in(tenant_id, "operator")
    await page.goto("/#/orders")
    await page.get_by_role("button", name="New order").click()
    form = page.locator("#ord-entry")
    await form.get_by_label("Reference").fill("fair-2026-0042")
    await form.get_by_label("Customer email").fill("jane@example.com")
    await form.get_by_label("Name", exact=True).fill("Jane Smith")
    await form.get_by_label("Street and number").fill("Stadhuisplein 10")
    await form.get_by_label("Postcode").fill("5611 EM")
    await form.get_by_label("City").fill("Eindhoven")
    await form.get_by_label("Country code").fill("nl")
    await form.get_by_label("SKU of line 1").fill("BENCHY-PLA-RED")
    await form.get_by_label("Quantity of line 1").fill("2")
    await form.get_by_role("button", name="Add line").click()
    await form.get_by_label("SKU of line 2").fill("NOT-MAPPED-YET")
    await form.get_by_role("button", name="Create order").click()

    await expect(page.get_by_role("heading", name="Order fair-2026-0042")).to_be_visible()
    await expect(page.locator("tr[data-line='BENCHY-PLA-RED']")).to_contain_text("2")
    await expect(page.locator("tr[data-line='NOT-MAPPED-YET'] .pill")).to_have_text(
        "NEEDS_MAPPING")
    await page.get_by_role("link", name="← Orders").click()
    row = page.locator("#ord-list tr[data-order]", has_text="fair-2026-0042")
    await expect(row).to_contain_text("Jane Smith")
    await expect(row).to_contain_text(f"2 {TIMES} BENCHY-PLA-RED")
    await page.get_by_role("search").get_by_label("Search").fill("no-such-order")
    await expect(page.locator("#ord-list [data-empty]")).to_have_text("No orders match.")
    await page.get_by_role("search").get_by_label("Search").fill("fair-2026")
    await expect(row).to_be_visible()


async def test_a_viewer_sees_orders_but_no_write_actions(farm: Farm, signed_in: SignIn) -> None:
    await farm.control("simplyprint", "farm", {"auto_print": False})
    order_id = await order_id_of(farm, farm.send_order([("BENCHY-PLA-RED", 1)]), "PROCESSING")
    page = await signed_in(farm.tenant_id, "viewer")
    await page.goto("/#/orders")
    await expect(page.locator("#ord-list tr[data-order]")).to_have_count(1)
    await expect(page.get_by_role("button", name="New order")).to_have_count(0)
    await page.goto(f"/#/orders/{order_id}")
    await expect(status_pill(page)).to_have_attribute("data-status", "PROCESSING")
    actions = page.get_by_role("group", name="Order actions")
    await expect(actions.get_by_role("button")).to_have_count(0)
