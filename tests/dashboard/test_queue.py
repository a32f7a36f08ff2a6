"""The queue view against the sandbox farm: retry from the errored tab, reorder by drag, the
matching explanation of a waiting job, the order and tag filters (asked of the server), bulk
cancel and retry, and a viewer's read-only page.

Jobs stay queued because the tenant dispatches smartly (printers pull from our queue) and its
synced printers are not ready: nobody confirmed their beds clear, the simplest real reason a
farm holds work."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from actors.runtime import Runtime
from forma3d.messaging.fleet import SyncFleet
from sandbox.server import SandboxConfig
from sandbox.tenant import sandbox_settings
from tests.dashboard.conftest import SignIn
from tests.polling import eventually
from tests.stack import Farm

QUEUE_SORT = "purpose:asc,priority:desc,position:asc,created_at:asc"


async def api_json(farm: Farm, method: str, path: str, body: Any = None) -> Any:
    response = await farm.api(method, path, body)
    assert response.status_code < 300, response.text
    return response.json()


async def queued_ids(farm: Farm) -> list[str]:
    """The waiting jobs in the order the dispatcher takes them, as the API lists them."""
    rows = await api_json(farm, "GET", f"/print-jobs?status.in=PENDING,QUEUED&sort={QUEUE_SORT}"
                                       "&fields=id&limit=500")
    return [r["id"] for r in rows]


async def hold_jobs(farm: Farm, sandbox: SandboxConfig, runtime: Runtime,
                    orders: list[list[tuple[str, int]]], jobs: int) -> list[str]:
    """Smart dispatch, the farm's printers synced but none ready, then `orders` sent; returns
    the queued jobs once all `jobs` are there."""
    settings = sandbox_settings(farm.sandboxes.urls, sandbox, dispatch_mode="smart")
    await api_json(farm, "PUT", "/integrations/simplyprint", settings["simplyprint"])
    assert await runtime.router.call(SyncFleet(tenant_id=farm.tenant_id)) == len(
        sandbox.simplyprint.printers)
    for lines in orders:
        farm.send_order(lines)

    async def all_queued() -> list[str]:
        ids = await queued_ids(farm)
        return ids if len(ids) == jobs else []

    return await eventually(all_queued, timeout=60, what=f"{jobs} queued jobs")


async def open_queue(signed_in: SignIn, farm: Farm, role: str = "operator",
                     tab: str = "queued") -> Page:
    page = await signed_in(farm.tenant_id, role)
    # A fresh load straight onto the tab (the view the sign-in opened may still be loading).
    await page.goto(f"/#/queue/{tab}")
    await page.reload()
    await expect(page.get_by_role("tab", name="Queued")).to_be_visible()
    return page


def rows(page: Page) -> Any:
    return page.locator("#q-panel tbody tr")


async def shown_ids(page: Page) -> list[str]:
    return [await r.get_attribute("data-job") or "" for r in await rows(page).all()]


async def test_retry_a_failed_job_from_the_errored_tab(farm: Farm, signed_in: SignIn) -> None:
    await farm.pool.execute(
        "UPDATE tenants SET settings = settings || '{\"max_print_attempts\": 1}' WHERE id = $1",
        farm.tenant_id)
    await farm.control("simplyprint", "farm", {"failure_rate": 1.0})
    order = farm.send_order([("BENCHY-PLA-RED", 1)])
    assert await farm.wait([order], {"FAILED"}) == {order: "FAILED"}
    # The retried print waits in the farm's queue: no auto-print, and no more failures.
    await farm.control("simplyprint", "farm", {"failure_rate": 0.0, "auto_print": False})
    [failed] = await api_json(farm, "GET", "/print-jobs?status=FAILED")

    page = await open_queue(signed_in, farm, tab="errored")
    await expect(page.get_by_role("tab", name="Errored")).to_have_attribute("aria-selected",
                                                                            "true")
    row = page.locator(f'tr[data-job="{failed["id"]}"]')
    await expect(row).to_contain_text("FAILED")
    await expect(row).to_contain_text(failed["error"])
    await row.get_by_role("button", name="Retry").click()
    await expect(row).to_be_hidden()  # the live stream refetched: it left the tab
    await expect(page.locator("#q-panel [data-empty]")).to_contain_text("No errored jobs")
    await page.get_by_role("tab", name="Queued").click()
    await expect(page.locator(f'tr[data-job="{failed["id"]}"]')).to_contain_text("QUEUED")
    job = await api_json(farm, "GET", f"/print-jobs/{failed['id']}")
    assert job["status"] == "QUEUED"


async def test_drag_and_buttons_reorder_the_queue(farm: Farm, sandbox: SandboxConfig,
                                                  ray_runtime: Runtime,
                                                  signed_in: SignIn) -> None:
    before = await hold_jobs(farm, sandbox, ray_runtime, [[("PLANTER-HEX-PLA-GREEN", 1)]], 5)
    page = await open_queue(signed_in, farm)
    await expect(rows(page)).to_have_count(5)
    assert await shown_ids(page) == before

    last, first = rows(page).nth(4), rows(page).nth(0)
    await last.drag_to(first, target_position={"x": 40, "y": 3})  # onto the first row's top
    expected = [before[4], *before[:4]]
    await expect(rows(page).first).to_have_attribute("data-job", before[4])
    async def moved() -> bool:
        return await queued_ids(farm) == expected

    await eventually(moved, timeout=30, what="the API's order after the drag")
    await page.reload()
    await expect(rows(page)).to_have_count(5)
    assert await shown_ids(page) == await queued_ids(farm) == expected
    await expect(rows(page).first.locator(".q-num")).to_have_text("1")

    # The same by keyboard-usable buttons: one down, then the last to the front.
    await rows(page).nth(0).get_by_role("button", name="down").click()
    await expect(rows(page).nth(1)).to_have_attribute("data-job", expected[0])
    await rows(page).nth(4).get_by_role("button", name="to front").click()
    await expect(rows(page).first).to_have_attribute("data-job", expected[4])
    final = [expected[4], expected[1], expected[0], expected[2], expected[3]]

    async def settled_in_the_api() -> bool:  # the page moves the row when the move is asked
        return await queued_ids(farm) == final

    await eventually(settled_in_the_api, timeout=30, what="the API's order after the buttons")
    assert await shown_ids(page) == final


async def test_why_is_this_waiting_shows_each_printers_reasons(
        farm: Farm, sandbox: SandboxConfig, ray_runtime: Runtime, signed_in: SignIn) -> None:
    [job] = await hold_jobs(farm, sandbox, ray_runtime, [[("BENCHY-PLA-RED", 1)]], 1)
    [printer, *_] = await api_json(farm, "GET", "/printers?sort=name:asc")
    await api_json(farm, "POST", f"/printers/{printer['id']}/disable")
    matching = await api_json(farm, "GET", f"/print-jobs/{job}/matching")

    page = await open_queue(signed_in, farm)
    await page.locator(f'tr[data-job="{job}"]').get_by_role("button", name="waiting").click()
    panel = page.get_by_role("complementary", name="Why is this waiting")
    await expect(panel).to_be_visible()
    count = len(matching["printers"])
    await expect(panel.locator("[data-why-summary]")).to_contain_text(
        f"No printer can take it now ({count} bed not confirmed clear, 1 disabled)")
    await expect(panel.locator("li")).to_have_count(count)
    for verdict in matching["printers"]:
        item = panel.locator(f'li[data-printer="{verdict["name"]}"]')
        await expect(item.locator("[data-reason]")).to_have_count(len(verdict["reasons"]))
        for reason in verdict["reasons"]:
            await expect(item.locator(f'[data-reason="{reason}"]')).to_be_visible()
    await expect(panel.locator(f'li[data-printer="{printer["name"]}"]')).to_contain_text(
        "disabled")

    # Live: enabling the printer again is an event the open panel follows.
    await api_json(farm, "POST", f"/printers/{printer['id']}/enable")
    await expect(panel.locator("[data-why-summary]")).to_contain_text(
        f"({count} bed not confirmed clear)")


async def test_filter_by_order_then_bulk_cancel_and_bulk_retry_two_jobs(
        farm: Farm, sandbox: SandboxConfig, ray_runtime: Runtime, signed_in: SignIn) -> None:
    jobs = await hold_jobs(farm, sandbox, ray_runtime, [[("VASE-SPIRAL-PLA-WHITE", 1)],
                                                        [("BENCHY-PLA-RED", 1)]], 3)
    page = await open_queue(signed_in, farm)
    await expect(rows(page)).to_have_count(3)
    # The order filter (the jobs' order_name.contains, asked of the server) finds one.
    by_order: dict[str, list[str]] = {}
    for job in await api_json(farm, "GET", "/print-jobs?fields=id,order_id"):
        by_order.setdefault(job["order_id"], []).append(job["id"])
    [(order_id, [single])] = [(o, ids) for o, ids in by_order.items() if len(ids) == 1]
    order = await api_json(farm, "GET", f"/orders/{order_id}")
    await page.get_by_label("Order", exact=True).fill(order["name"])
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_have_attribute("data-job", single)
    await expect(rows(page).first).to_contain_text(order["name"])
    await page.get_by_role("button", name="Clear filters").click()
    await expect(rows(page)).to_have_count(3)

    two = jobs[:2]
    for job in two:
        await page.locator(f'tr[data-job="{job}"]').get_by_role("checkbox").check()
    bulk = page.locator("#q-bulk")
    await expect(bulk).to_contain_text("2 selected")
    await bulk.get_by_role("button", name="Cancel selected").click()
    await expect(page.locator("#toasts")).to_contain_text("2 jobs cancelled")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_have_attribute("data-job", jobs[2])

    await page.get_by_role("tab", name="Cancelled").click()
    await expect(rows(page)).to_have_count(2)
    await page.get_by_role("checkbox", name="Select all shown jobs").check()
    await expect(bulk).to_contain_text("2 selected")
    await bulk.get_by_role("button", name="Retry selected").click()
    await expect(page.locator("#toasts")).to_contain_text("2 jobs requeued")
    await expect(page.locator("#q-panel [data-empty]")).to_contain_text("No cancelled jobs")
    await page.get_by_role("tab", name="Queued").click()
    await expect(rows(page)).to_have_count(3)
    assert sorted(await queued_ids(farm)) == sorted(jobs)


async def tag_sku(farm: Farm, sku: str, tags: list[str]) -> None:
    """Give the parts of a SKU's mapping required tags, as an operator edits a mapping."""
    [mapping] = await api_json(farm, "GET", f"/product-mappings?sku={sku}")
    parts = [{k: part[k] for k in ("id", "name", "file_id", "quantity", "print_profile", "grams")}
             | {"required_tags": tags} for part in mapping["parts"]]
    draft = {k: mapping[k] for k in ("sku", "variant_id", "name", "packaging_grams",
                                     "packaging_cm")}
    await api_json(farm, "PUT", f"/product-mappings/{mapping['id']}", draft | {"parts": parts})


async def test_the_tag_and_model_filters_are_asked_of_the_server(
        farm: Farm, sandbox: SandboxConfig, ray_runtime: Runtime, signed_in: SignIn) -> None:
    await tag_sku(farm, "BENCHY-PLA-RED", ["Rush", "model:MK4S"])
    jobs = await hold_jobs(farm, sandbox, ray_runtime, [[("VASE-SPIRAL-PLA-WHITE", 1)],
                                                        [("BENCHY-PLA-RED", 1)]], 3)
    [tagged] = [j["id"] for j in await api_json(farm, "GET", "/print-jobs?required_tag=rush")]
    page = await open_queue(signed_in, farm)
    await expect(rows(page)).to_have_count(3)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url)
            if "/api/v1/print-jobs?" in request.url else None)

    # The choices are the tab's tags (one call), the choice a condition of the list call.
    tag = page.locator('#q-filters select[name="tag"]')
    await expect(tag.locator("option")).to_have_text(["Any", "Rush"])
    await tag.select_option("Rush")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_have_attribute("data-job", tagged)
    assert any("required_tag=Rush" in url for url in asked), asked
    await page.get_by_role("button", name="Clear filters").click()
    await expect(rows(page)).to_have_count(3)

    asked.clear()
    model = page.locator('#q-filters select[name="model"]')
    await model.select_option("MK4S")
    await expect(rows(page)).to_have_count(1)
    await expect(page.locator("#q-panel")).to_contain_text("model:MK4S")
    assert any("model=MK4S" in url for url in asked), asked
    assert tagged in jobs


async def test_a_viewer_sees_the_queue_without_write_controls(
        farm: Farm, sandbox: SandboxConfig, ray_runtime: Runtime, signed_in: SignIn) -> None:
    [job] = await hold_jobs(farm, sandbox, ray_runtime, [[("BENCHY-PLA-RED", 1)]], 1)
    page = await open_queue(signed_in, farm, role="viewer")
    row = page.locator(f'tr[data-job="{job}"]')
    await expect(row).to_contain_text("QUEUED")
    await expect(row.get_by_role("button")).to_have_text(["Why waiting?"])  # reading only
    await expect(page.locator("#q-panel").get_by_role("checkbox")).to_have_count(0)
    await expect(page.locator('#q-panel tr[draggable="true"]')).to_have_count(0)
    await row.get_by_role("button", name="waiting").click()
    await expect(page.get_by_role("complementary", name="Why is this waiting")).to_contain_text(
        "bed not confirmed clear")
    await page.get_by_role("tab", name="Errored").click()
    await expect(page.locator("#q-panel [data-empty]")).to_contain_text("No errored jobs")
