"""Settings: connect an integration to the simulator through its form, change a tenant setting,
invite a user, API keys shown once, webhook subscriptions, and what a role without the
permissions sees (no security sections, no write controls)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from forma3d.db.pool import Pool
from forma3d.store.tenants import create_tenant
from sandbox.server import serve_sandboxes
from tests.dashboard.conftest import SignIn
from tests.stack import sandbox_config


async def new_tenant(db_pool: Pool) -> uuid.UUID:
    return await create_tenant(db_pool, f"settings-{uuid.uuid4().hex[:8]}")


async def open_section(page: Page, tab: str) -> None:
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Settings").click()
    await page.get_by_role("tab", name=tab).click()
    await expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")


async def test_connect_shopify_through_the_form_and_test_it(signed_in: SignIn,
                                                             db_pool: Pool) -> None:
    config = sandbox_config()
    running = await serve_sandboxes(config)
    tenant_id = await new_tenant(db_pool)
    try:
        page = await signed_in(tenant_id, "owner")
        await open_section(page, "Integrations")
        card = page.get_by_role("article", name="Shopify")
        await expect(card.locator(".pill").first).to_have_text("disconnected")
        await card.get_by_role("button", name="Connect Shopify").click()
        form = card.get_by_role("form", name="Shopify connection")
        shop = config.shopify
        await form.get_by_label("Shop domain").fill(shop.shop_domain)
        await form.get_by_label("Access token").fill(shop.access_token)
        await form.get_by_label("Webhook secret").fill(shop.webhook_secret)
        await form.get_by_text("Advanced").click()
        await form.get_by_label("Base URL").fill(running.urls["shopify"])
        await form.get_by_role("button", name="Save and connect").click()

        await expect(card.locator(".pill").first).to_have_text("connected")
        await expect(card).to_contain_text(shop.shop_domain)
        await expect(card).to_contain_text("registered at Shopify")  # our webhooks, there
        await expect(card).to_contain_text(f"…{shop.access_token[-4:]}")
        await card.get_by_role("button", name="Test Shopify").click()
        await expect(card.locator(".test-result")).to_contain_text("healthy")
        await expect(card.locator(".test-result")).to_have_attribute("data-ok", "true")
        # The secret went in and never comes back: not in the card, not in a reopened form.
        await card.get_by_role("button", name="Change Shopify").click()
        await expect(form.get_by_label("Access token")).to_have_value("")
        await expect(page.locator("#view")).not_to_contain_text(shop.access_token)
    finally:
        await db_pool.execute("UPDATE integrations SET enabled = false WHERE tenant_id = $1",
                              tenant_id)
        await running.stop()


async def test_a_changed_setting_is_saved_alone_and_kept_after_reload(
        signed_in: SignIn, db_pool: Pool) -> None:
    page = await signed_in(await new_tenant(db_pool), "admin")
    await open_section(page, "Tenant settings")
    attempts = page.get_by_label("Max print attempts")
    await expect(attempts).to_have_value("5")
    # Each setting carries its description from the API.
    await expect(page.locator("#view")).to_contain_text(
        "How often a failed print job is tried before its order is held for an operator.")
    await attempts.fill("7")
    await page.get_by_label("Stock management enabled").check()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator("#toasts")).to_contain_text(
        "Saved: max_print_attempts, stock_management_enabled")
    await page.reload()
    await expect(page.get_by_label("Max print attempts")).to_have_value("7")
    await expect(page.get_by_label("Stock management enabled")).to_be_checked()
    # Values the server refuses together: its reason, and nothing changes.
    await page.get_by_label("Max print attempts").fill("4")
    await page.get_by_label("Gridflock min (mm)").fill("900")
    await page.get_by_label("Gridflock max (mm)").fill("500")
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.locator(".toast.error")).to_contain_text("gridflock_min_mm")
    await page.reload()
    await expect(page.get_by_label("Max print attempts")).to_have_value("7")
    await expect(page.get_by_label("Gridflock min (mm)")).to_have_value("100")


async def test_invite_a_user_with_a_role_and_change_it(signed_in: SignIn,
                                                        db_pool: Pool) -> None:
    page = await signed_in(await new_tenant(db_pool), "owner")
    await open_section(page, "Users and roles")
    invite = page.get_by_role("form", name="Invite a user")
    await invite.get_by_label("Email").fill("ana@example.com")
    await invite.get_by_label("Name").fill("Ana Lopes")
    await invite.get_by_label("Role of the invited user").select_option("catalogue_manager")
    await invite.get_by_role("button", name="Invite").click()
    await expect(page.locator("[data-secret]")).to_contain_text(
        re.compile(r"/accept-invitation#token=\S+"))
    row = page.locator("tr", has_text="ana@example.com")
    await expect(row).to_contain_text("invited")
    role = row.get_by_label("Role of ana@example.com")
    await expect(role).to_have_value("catalogue_manager")
    await role.select_option("operator")
    await expect(page.locator("#toasts")).to_contain_text("ana@example.com is now operator")
    await page.reload()
    await expect(page.get_by_label("Role of ana@example.com")).to_have_value("operator")
    # The roles, with what each grants.
    roles = page.locator("#people-roles")
    await expect(roles.locator("tr", has_text="catalogue_manager")).to_contain_text("permissions")


async def test_an_api_key_secret_is_shown_once(signed_in: SignIn, db_pool: Pool) -> None:
    page = await signed_in(await new_tenant(db_pool), "owner")
    await open_section(page, "API keys")
    create = page.get_by_role("form", name="Create an API key")
    await create.get_by_label("Name").fill("warehouse scanner")
    await create.get_by_label("Role").select_option("operator")
    await create.get_by_role("button", name="Create key").click()
    secret = page.locator("[data-secret]")
    await expect(secret).to_have_text(re.compile(r"\S{20,}"))
    key = (await secret.text_content() or "").strip()
    row = page.locator("tr", has_text="warehouse scanner")
    await expect(row).to_contain_text("operator")
    await expect(row).to_contain_text("active")
    await page.reload()
    await expect(page.locator("tr", has_text="warehouse scanner")).to_be_visible()
    await expect(page.locator("[data-secret]")).to_have_count(0)
    await expect(page.locator("#view")).not_to_contain_text(key)
    # Revoking asks once more, then the key shows revoked.
    revoke = page.get_by_role("button", name="Revoke warehouse scanner")
    await revoke.click()
    await page.get_by_role("button", name="Confirm: revoke warehouse scanner").click()
    await expect(page.locator("tr", has_text="warehouse scanner")).to_contain_text("revoked")


async def test_a_webhook_subscription_shows_its_signing_secret_once(
        signed_in: SignIn, db_pool: Pool) -> None:
    tenant_id = await new_tenant(db_pool)
    await db_pool.execute(  # the tenant's own network: a loopback receiver is allowed
        "UPDATE tenants SET settings = settings || '{\"webhooks_allow_private\": true}'"
        " WHERE id = $1", tenant_id)
    page = await signed_in(tenant_id, "owner")
    await open_section(page, "Webhooks")
    form = page.get_by_role("form", name="New subscription")
    await form.get_by_label("URL").fill("http://127.0.0.1:9/hooks/forma3d")
    await form.get_by_label("Event types").select_option(["order.created"])
    await form.get_by_label("Description").fill("ERP bridge")
    await form.get_by_role("button", name="Subscribe").click()
    await expect(page.locator("[data-secret]")).to_have_text(re.compile(r"^whsec_"))
    row = page.locator("tr", has_text="127.0.0.1:9/hooks/forma3d")
    await expect(row).to_contain_text("order.created")
    await row.get_by_role("button", name="Edit").click()
    await page.get_by_role("form", name="Edit subscription").get_by_label("Enabled").uncheck()
    await page.get_by_role("button", name="Save").click()
    await expect(row).to_contain_text("off")
    await row.get_by_role("button", name="Deliveries").click()
    await expect(page.locator("#hook-deliveries")).to_contain_text("No deliveries yet.")
    await page.reload()
    await expect(page.locator("[data-secret]")).to_have_count(0)


@pytest.mark.parametrize("role", ["viewer", "operator"])
async def test_a_role_without_the_permissions_sees_no_security_sections(
        signed_in: SignIn, db_pool: Pool, role: str) -> None:
    page = await signed_in(await new_tenant(db_pool), role)
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Settings").click()
    tabs = page.get_by_role("tablist", name="Settings sections").get_by_role("tab")
    await expect(tabs).to_have_text(["Tenant settings"])
    await expect(page.locator("#view")).to_contain_text("How often a failed print job is tried")
    panel = page.get_by_role("tabpanel")
    await expect(panel.locator("input, select, textarea, button")).to_have_count(0)
    # Asking for a section by address shows the one the role may see instead.
    for section in ("integrations", "users", "keys", "webhooks"):
        await page.goto(f"/#/settings/{section}")
        await expect(page.get_by_role("tab", name="Tenant settings")).to_have_attribute(
            "aria-selected", "true")
        await expect(page.get_by_role("tab")).to_have_count(1)
