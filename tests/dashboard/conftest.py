"""Browser tests: Debian's Chromium, headless, driven by Playwright against our app on loopback
(the `ingress` and `farm` fixtures of tests/stack.py). Each test signs a user in through the
sign-in form and asserts what the page shows; an uncaught script error fails the test."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from forma3d.db.pool import Pool
from forma3d.http.auth import hash_password
from forma3d.store.users import create_user

PASSWORD = "plate-and-nozzle-42"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
expect.set_options(timeout=30_000)  # a loaded 2-core machine; each wait ends on its condition

SignIn = Callable[..., Awaitable[Page]]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Chromium is missing: scripts/bootstrap installs Debian's chromium"
    return found


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium(),
                                                    args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


async def add_user(pool: Pool, tenant_id: uuid.UUID, role: str) -> str:
    """A user of `role` with a password; returns the email."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = await create_user(pool, tenant_id, email, f"{role.title()} Person", role,
                             await hash_password(PASSWORD))
    assert user is not None
    return email


async def sign_in(page: Page, tenant: str, email: str, password: str = PASSWORD) -> None:
    await page.goto("/")
    form = page.locator("#sign-in-form")
    await form.get_by_label("Tenant").fill(tenant)
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#top")).to_be_visible()


@pytest.fixture
async def signed_in(browser: Browser, ingress: str,
                    db_pool: Pool) -> AsyncIterator[SignIn]:
    """`await signed_in(tenant_id, role)`: a page signed in as a new user of that role."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_page(tenant_id: uuid.UUID, role: str = "owner") -> Page:
        context = await browser.new_context(base_url=ingress, viewport={"width": 1280,
                                                                         "height": 900})
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        await sign_in(page, str(tenant_id), await add_user(db_pool, tenant_id, role))
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert not errors, f"script errors in the page: {errors}"
