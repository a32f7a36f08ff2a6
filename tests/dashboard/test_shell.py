"""The shell: sign-in with a session, the tenant and role shown, views offered by permission."""

from __future__ import annotations

import uuid

from playwright.async_api import Browser, expect

from forma3d.db.pool import Pool
from forma3d.store.tenants import create_tenant
from tests.dashboard.conftest import SignIn, add_user, sign_in


async def test_sign_in_shows_tenant_and_role_and_goes_live(signed_in: SignIn,
                                                           db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"shell-{uuid.uuid4().hex[:8]}",
                                    name="Layer Cake Prints")
    page = await signed_in(tenant_id, "operator")
    await expect(page.locator("#tenant-name")).to_have_text("Layer Cake Prints")
    await expect(page.locator("#user-role")).to_have_text("operator")
    await expect(page.locator("#live")).to_have_text("live")
    nav = page.get_by_role("navigation", name="Views")
    await expect(nav.get_by_role("link", name="Floor")).to_be_visible()


async def test_a_wrong_password_is_refused_with_the_servers_reason(
        browser: Browser, ingress: str, db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"shell-{uuid.uuid4().hex[:8]}")
    email = await add_user(db_pool, tenant_id, "viewer")
    context = await browser.new_context(base_url=ingress)
    page = await context.new_page()
    try:
        await page.goto("/")
        form = page.locator("#sign-in-form")
        await form.get_by_label("Tenant").fill(str(tenant_id))
        await form.get_by_label("Email").fill(email)
        await form.get_by_label("Password").fill("not the password")
        await form.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#sign-in-error")).to_contain_text("wrong tenant, email or "
                                                                     "password")
        await expect(page.locator("#top")).to_be_hidden()
        await sign_in(page, str(tenant_id), email)  # the right one still works
    finally:
        await context.close()


async def test_sign_out_ends_the_session(signed_in: SignIn, db_pool: Pool) -> None:
    tenant_id = await create_tenant(db_pool, f"shell-{uuid.uuid4().hex[:8]}")
    page = await signed_in(tenant_id, "viewer")
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in")).to_be_visible()
    await page.reload()
    await expect(page.locator("#sign-in")).to_be_visible()  # the cookie is gone, not just hidden
