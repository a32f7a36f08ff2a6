"""How long a committed event takes to show in the page: ~20 orders entered through the API,
each timed to the moment the overview's count of waiting orders, open in a signed-in browser,
shows it (a MutationObserver in the page stamps the change, so no polling interval is measured).

Two clocks start, both on this machine's clock: when the committing call's answer reached us
(after the commit: a lower bound, 0 when the page was faster than the answer), and the order's
`created_at` (its transaction's start, before the commit: an upper bound). Prints p50/p95 of both
(`-s` shows them; BENCHMARKS.md reports them); asserts only that every event appeared."""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime

import httpx
from playwright.async_api import expect

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant
from tests.dashboard.conftest import SignIn

EVENTS = 20
ADDRESS = {"name": "Jo Maker", "address1": "Stadhuisplein 10", "city": "Eindhoven",
           "zip": "5611 EM", "country_code": "NL"}
# Resolves with Date.now() when the waiting-orders count reads `n`, or null after 30 s.
WATCH = """n => { window.__seen = new Promise(resolve => {
  const shows = () => {
    const el = document.querySelector('[data-kpi="waiting"] strong');
    return el !== null && el.textContent.trim() === String(n);
  };
  if (shows()) { resolve(Date.now()); return; }
  const watcher = new MutationObserver(() => {
    if (shows()) { watcher.disconnect(); resolve(Date.now()); }
  });
  watcher.observe(document.getElementById('view'),
                  {subtree: true, childList: true, characterData: true});
  setTimeout(() => { watcher.disconnect(); resolve(null); }, 30000);
}); }"""


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def test_committed_events_reach_the_page(signed_in: SignIn, db_pool: Pool,
                                               ingress: str) -> None:
    tenant_id = await create_tenant(db_pool, f"latency-{uuid.uuid4().hex[:8]}")
    key = (await create_api_key(db_pool, tenant_id, "desk", role="operator")).key
    page = await signed_in(tenant_id, "viewer")
    await expect(page.locator('[data-kpi="waiting"] strong')).to_have_text("0")
    await expect(page.locator("#live")).to_have_text("live")

    latencies: list[float] = []
    from_start: list[float] = []  # from the order's transaction start
    missed: list[int] = []
    early = 0  # shown before the committing call's answer reached us (counted as 0 ms)
    async with httpx.AsyncClient(base_url=ingress, timeout=60,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        for n in range(1, EVENTS + 1):
            await page.evaluate(WATCH, n)
            made = await client.post("/api/v1/orders", json={
                "reference": f"latency-{n}", "shipping_address": ADDRESS,
                "line_items": [{"sku": "NO-SUCH-SKU", "quantity": 1}]})
            committed = time.time() * 1000  # the order's transaction committed before this
            assert made.status_code == 201, made.text
            seen = await page.evaluate("() => window.__seen")
            if seen is None:
                missed.append(n)
            else:
                early += seen < committed
                latencies.append(max(0.0, seen - committed))
                started = datetime.fromisoformat(made.json()["created_at"]).timestamp() * 1000
                from_start.append(seen - started)
    for name, values in (("from the API's answer", latencies),
                         ("from the transaction's start", from_start)):
        if values:
            print(f"\ndashboard live latency over {len(values)} events, {name}: "
                  f"p50 {statistics.median(values):.0f} ms, p95 {percentile(values, 95):.0f} ms,"
                  f" min {min(values):.0f} ms, max {max(values):.0f} ms")
    print(f"{early} of {EVENTS} shown before the API's answer arrived (counted as 0 ms)")
    assert not missed, f"events that never appeared in the page: {missed}"
