"""The overview: the figures the API counts, drawn and written out, and live."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import expect

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from tests.dashboard.conftest import SignIn

ADDRESS = {"name": "Jo Maker", "address1": "Stadhuisplein 10", "city": "Eindhoven",
           "zip": "5611 EM", "country_code": "NL"}


async def seed(pool: Pool, tenant_id: uuid.UUID) -> None:
    now = datetime.now(UTC)
    for n, (status, hours) in enumerate([("FULFILLED", 50), ("ON_HOLD", 30), ("PROCESSING", 5),
                                         ("PROCESSING", 2), ("CANCELLED", 1)]):
        await pool.execute(
            """INSERT INTO orders (id, tenant_id, shopify_order_id, name, status, received_at)
               VALUES ($1, $2, $3, $4, $5, $6)""", uuid.uuid4(), tenant_id, 7000 + n,
            f"#{7000 + n}", status, now - timedelta(hours=hours))
    file_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
        " VALUES ($1, $2, 'p.gcode', $3, 2, 'G1')", file_id, tenant_id, uuid.uuid4().hex)
    await pool.executemany(
        """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, copy_number, file_id, status,
                                   completed_at)
           VALUES ($1, $2, $3, 'STOCK', 1, $4, 'COMPLETED', $5)""",
        [(uuid.uuid4(), tenant_id, f"k:{n}", file_id, now - timedelta(hours=n % 4))
         for n in range(7)])
    for name, state, online, ready in [("a", "operational", True, True),
                                       ("b", "operational", True, False),
                                       ("c", "printing", True, True),
                                       ("d", "offline", False, False)]:
        await pool.execute(
            """INSERT INTO printers (id, tenant_id, name, state, online, ready)
               VALUES ($1, $2, $3, $4, $5, $6)""", uuid.uuid4(), tenant_id, name, state, online,
            ready)


async def test_the_overview_shows_the_apis_figures_and_a_new_order_live(
        signed_in: SignIn, db_pool: Pool, ingress: str) -> None:
    tenant_id = await create_tenant(db_pool, f"glance-{uuid.uuid4().hex[:8]}")
    await seed(db_pool, tenant_id)
    page = await signed_in(tenant_id, "viewer")
    await expect(page.locator("#view h1")).to_have_text("Overview")  # the first view
    answer = await page.request.get("/api/v1/overview")
    assert answer.ok
    figures = await answer.json()

    for status, count in figures["orders_by_status"].items():
        await expect(page.locator(f'[data-chart="orders"] g[data-key="{status}"] .num')
                     ).to_have_text(str(count))
    for place, count in figures["printers_by_place"].items():
        await expect(page.locator(f'.legend li[data-place="{place}"] strong')
                     ).to_have_text(str(count))
    done = sum(h["completed"] for h in figures["jobs_completed_per_hour"])
    assert done == 7
    await expect(page.locator('[data-kpi="completed"] strong')).to_have_text(str(done))
    await expect(page.locator('[data-chart="jobs"] rect.fill')).to_have_count(24)
    await expect(page.locator('[data-kpi="waiting"] strong')).to_have_text(
        str(figures["waiting_orders"]))
    oldest = figures["oldest_waiting_order"]
    link = page.locator("[data-oldest] a")
    await expect(link).to_have_text(oldest["name"])
    await expect(link).to_have_attribute("href", f"#/orders/{oldest['id']}")

    # A new order, entered through the API, shows up without a reload.
    key = (await create_api_key(db_pool, tenant_id, "desk", role="operator")).key
    async with httpx.AsyncClient(base_url=ingress, timeout=30) as client:
        made = await client.post("/api/v1/orders", headers={"Authorization": f"Bearer {key}"},
                                 json={"reference": "glance-1", "shipping_address": ADDRESS,
                                       "line_items": [{"sku": "NO-SUCH-SKU", "quantity": 1}]})
    assert made.status_code == 201, made.text
    await expect(page.locator('[data-kpi="waiting"] strong')).to_have_text(
        str(figures["waiting_orders"] + 1))
