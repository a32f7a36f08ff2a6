"""The product mappings view: a mapping made by uploading a print file (the file input, and a
drop on the drop zone) shows the file's print time and grams; orders waiting on an unmapped SKU
are listed and leave the list once it is mapped; a viewer is offered no write."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import FilePayload, Page, expect

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from sandbox.tenant import fake_gcode, seed_catalog
from tests.dashboard.conftest import SignIn

pytestmark = pytest.mark.ray
TIMES = "\N{MULTIPLICATION SIGN}"  # the page writes quantities as "2 (times) part"


async def new_tenant(db_pool: Pool, catalog: bool = False) -> uuid.UUID:
    tenant_id = await create_tenant(db_pool, f"maps-{uuid.uuid4().hex[:8]}")
    if catalog:
        async with db_pool.acquire() as conn:
            await seed_catalog(conn, tenant_id)
    return tenant_id


def gcode(minutes: int, grams: int) -> bytes:
    """A unique small gcode (files are deduplicated by content) with the slicer's estimates."""
    return fake_gcode(uuid.uuid4().hex, minutes, grams)


def gcode_file(name: str, minutes: int, grams: int) -> FilePayload:
    return {"name": name, "mimeType": "text/plain", "buffer": gcode(minutes, grams)}


async def open_new_mapping(page: Page) -> None:
    await page.goto("/#/mappings")
    await page.get_by_role("button", name="New mapping").click()
    await expect(page.get_by_role("heading", name="New product mapping")).to_be_visible()


async def drop_file(page: Page, name: str, content: bytes) -> None:
    """Drops a file on the drop zone as a browser does: a drop event carrying a DataTransfer."""
    transfer = await page.evaluate_handle(
        """([name, text]) => { const dt = new DataTransfer();
             dt.items.add(new File([text], name, {type: "text/plain"})); return dt; }""",
        [name, content.decode()])
    await page.locator("#map-drop").dispatch_event("dragover", {"dataTransfer": transfer})
    await page.locator("#map-drop").dispatch_event("drop", {"dataTransfer": transfer})


async def test_create_a_mapping_by_uploading_a_file(signed_in: SignIn, db_pool: Pool) -> None:
    page = await signed_in(await new_tenant(db_pool), "catalogue_manager")
    await open_new_mapping(page)
    form = page.locator("#map-form")
    await form.get_by_label("SKU").fill("DRAGON-PLA-GOLD")
    await form.get_by_label("Name", exact=True).fill("Articulated dragon")
    await page.get_by_label("Choose print files").set_input_files(
        files=[gcode_file("dragon-body.gcode", 150, 42)])
    part = page.locator("fieldset.map-part")
    await expect(part).to_have_count(1)
    await expect(part.locator("[data-print-time]")).to_have_text("2 h 30 min")
    await expect(part.locator("[data-grams]")).to_have_text("42 g")
    await expect(part.get_by_label("Name of part 1")).to_have_value("dragon body")
    await part.get_by_label("Quantity of part 1").fill("2")
    await part.get_by_label("Required tags of part 1").fill("PLA, gold")
    await expect(page.locator("#map-totals")).to_have_text("All copies: 5 h 0 min · 84 g")
    await form.get_by_role("button", name="Create mapping").click()

    row = page.locator("#map-list tr[data-sku='DRAGON-PLA-GOLD']")
    await expect(row).to_contain_text("Articulated dragon")
    await expect(row).to_contain_text(f"2 {TIMES} dragon body [PLA, gold]")
    await expect(row.locator("[data-print-time]")).to_have_text("5 h 0 min")
    await expect(row.locator("[data-grams]")).to_have_text("84 g")


async def test_drop_a_file_to_add_a_part_to_a_mapping(signed_in: SignIn, db_pool: Pool) -> None:
    page = await signed_in(await new_tenant(db_pool, catalog=True), "catalogue_manager")
    await page.goto("/#/mappings")
    await page.get_by_role("button", name="Edit BENCHY-PLA-RED").click()
    await expect(page.get_by_role("heading", name="Mapping BENCHY-PLA-RED")).to_be_visible()
    await expect(page.locator("fieldset.map-part")).to_have_count(1)

    await drop_file(page, "benchy-flag.gcode", gcode(20, 3))
    flag = page.locator("fieldset.map-part").nth(1)
    await expect(flag.get_by_label("Name of part 2")).to_have_value("benchy flag")
    await expect(flag.locator("[data-print-time]")).to_have_text("20 min")
    await expect(flag.locator("[data-grams]")).to_have_text("3.0 g")
    await page.get_by_role("button", name="Save mapping").click()

    row = page.locator("#map-list tr[data-sku='BENCHY-PLA-RED']")
    await expect(row).to_contain_text(f"1 {TIMES} benchy flag")
    await expect(row.locator("[data-print-time]")).to_have_text("1 h 20 min")
    await expect(row.locator("[data-grams]")).to_have_text("38 g")


async def test_an_order_waiting_on_a_missing_mapping_is_listed_until_mapped(
        signed_in: SignIn, db_pool: Pool, ingress: str) -> None:
    tenant_id = await new_tenant(db_pool, catalog=True)
    key = (await create_api_key(db_pool, tenant_id, "operator")).key
    async with httpx.AsyncClient(base_url=f"{ingress}/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        made = await client.post("/orders", json={
            "reference": "fair-77", "shipping_address": {
                "name": "Ada Lovelace", "address1": "Stadhuisplein 10", "city": "Eindhoven",
                "zip": "5611 EM", "country_code": "NL"},
            "line_items": [{"sku": "OWL-PLA-BROWN", "quantity": 3, "title": "Owl"},
                           {"sku": "BENCHY-PLA-RED", "quantity": 1}]})
    assert made.status_code == 201, made.text
    page = await signed_in(tenant_id, "catalogue_manager")
    await page.goto("/#/mappings")
    waiting = page.locator("#map-waiting tr[data-waiting-sku='OWL-PLA-BROWN']")
    await expect(waiting).to_contain_text("fair-77")
    await expect(waiting).to_contain_text("3")
    await expect(page.locator("#map-waiting tr[data-waiting-sku]")).to_have_count(1)

    await waiting.get_by_role("button", name="Map OWL-PLA-BROWN").click()
    form = page.locator("#map-form")
    await expect(form.get_by_label("SKU")).to_have_value("OWL-PLA-BROWN")
    await form.get_by_label("Name", exact=True).fill("Owl")
    await page.get_by_label("Choose print files").set_input_files(
        files=[gcode_file("owl.gcode", 45, 18)])
    await expect(page.locator("fieldset.map-part")).to_have_count(1)
    await form.get_by_role("button", name="Create mapping").click()
    await expect(page.locator("#map-list tr[data-sku='OWL-PLA-BROWN']")).to_be_visible()
    # The mapping releases the order: it leaves the waiting list without a reload.
    await expect(page.locator("#map-waiting [data-empty]")).to_have_text(
        "No order waits on a mapping.", timeout=30_000)


async def test_a_viewer_sees_mappings_but_no_write_actions(signed_in: SignIn,
                                                           db_pool: Pool) -> None:
    page = await signed_in(await new_tenant(db_pool, catalog=True), "viewer")
    await page.goto("/#/mappings")
    await expect(page.locator("#map-list tr[data-sku]")).to_have_count(4)
    await expect(page.get_by_role("button", name="New mapping")).to_have_count(0)
    await page.get_by_role("button", name="Open PLANTER-HEX-PLA-GREEN").click()
    await expect(page.locator("fieldset.map-part")).to_have_count(3)
    await expect(page.get_by_label("SKU")).to_be_disabled()
    await expect(page.get_by_label("Quantity of part 3")).to_be_disabled()
    await expect(page.locator("#map-drop")).to_have_count(0)
    await expect(page.get_by_label("Choose print files")).to_have_count(0)
    for name in ("Save mapping", "Delete mapping", "Remove part"):
        await expect(page.get_by_role("button", name=name)).to_have_count(0)
