"""Screenshots of every dashboard view against a demo stack: docs/screens/<view>.png (1280x800),
which the README shows.

    scripts/screens                      # start a stack in-process, run a small demo, shoot
    scripts/screens --url http://127.0.0.1:8000   # a running `scripts/up` stack (sandbox mode)

Without --url the stack starts as `forma3d demo` starts it (embedded PostgreSQL and Redis, a
local Ray, the Serve app and the Shopify/SimplyPrint/Sendcloud simulators connected to the
default tenant), in a temporary data directory on free ports, so a stack already running on the
machine is left alone. Either way `forma3d demo`'s driver sends orders through the simulators
(some prints fail and are retried, some units come from stock) and a few more are sent and not
waited for (on a stack started here, printed slower) so the floor and the queue have work in
hand. Then a new owner of the default tenant signs in through the page with Debian's Chromium
and every view of the navigation is captured, plus one order's page. Tooling, not product: it
imports Playwright, so it lives here, not in forma3d/.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.dashboard's browser settings, when run as a file

from tests.e2e.test_demo import free_port_block  # noqa: E402  (after the path is set)

VIEWPORT = {"width": 1280, "height": 800}
OPEN_SPEEDUP = 30.0  # the unfinished orders print at 30x: minutes of real time, mid-print
SETTLE_MS = 1500  # after a view's data arrived: charts and live updates draw


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/screens", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a running stack in sandbox mode (default: start one)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screens",
                        help="where the PNGs go (docs/screens)")
    parser.add_argument("--orders", type=int, default=8, help="demo orders driven to the end (8)")
    parser.add_argument("--open-orders", type=int, default=4,
                        help="orders sent last and not waited for (4)")
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="seconds the demo orders may take (240)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    started_here = not args.url
    if started_here:
        data = Path(tempfile.mkdtemp(prefix="forma3d-screens-"))
        for name in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS"):
            os.environ.pop(name, None)
        os.environ.update({"FORMA3D_DATA_DIR": str(data), "RAY_ADDRESS": "local",
                           "FORMA3D_HTTP_PORT": str(free_port_block()),
                           "FORMA3D_ENTITY_HOSTS": "1", "FORMA3D_SANDBOX": "1"})
    from forma3d.config import settings
    from forma3d.demo import DemoOptions, drive, target

    options = DemoOptions(orders=args.orders, failure_rate=0.15 if started_here else 0.0,
                          stock_ratio=0.3 if started_here else 0.0, timeout=args.timeout,
                          api=args.url)
    with target(options, settings()) as found:
        report = asyncio.run(drive(found, options, False))
        print(f"screens: {report['fulfilled']} of {report['orders']} demo orders fulfilled",
              file=sys.stderr)
        written = asyncio.run(shoot(found, args))
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


async def _printing(pool: Any, tenant_id: uuid.UUID, timeout: float = 90.0) -> None:
    """Until a print job is on a printer (or the timeout: the shots are taken anyway)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await pool.fetchval("SELECT count(*) FROM print_jobs WHERE tenant_id = $1"
                               " AND status = 'PRINTING'", tenant_id):
            return
        await asyncio.sleep(1)
    print("screens: no print job started in time; shooting anyway", file=sys.stderr)


async def shoot(found: object, args: argparse.Namespace) -> list[Path]:
    import httpx
    from playwright.async_api import async_playwright, expect

    from forma3d.db.pool import create_pool
    from forma3d.demo import Target, order_lines
    from forma3d.http.auth import hash_password
    from forma3d.store.users import create_user
    from tests.dashboard.conftest import CHROMIUM_FLAGS, chromium, sign_in

    assert isinstance(found, Target)
    pool = await create_pool(found.database_url, max_size=2)
    try:
        password = secrets.token_urlsafe(18)
        email = f"screens-{uuid.uuid4().hex[:8]}@example.com"
        user = await create_user(pool, found.tenant_id, email, "Robin Owner", "owner",
                                 await hash_password(password))
        assert user is not None
        async with httpx.AsyncClient(timeout=30) as client:
            if found.stack is not None:  # ours: slow the farm so these orders are mid-print
                slowed = await client.post(f"{found.urls['shopify']}/_sandbox/clock",
                                           json={"speedup": OPEN_SPEEDUP})
                slowed.raise_for_status()
            for index in range(args.open_orders):
                sent = await client.post(f"{found.urls['shopify']}/_sandbox/orders",
                                         json={"line_items": order_lines(index + 1)})
                sent.raise_for_status()
        await _printing(pool, found.tenant_id)
        order_id = await pool.fetchval(
            "SELECT id FROM orders WHERE tenant_id = $1 ORDER BY (status = 'FULFILLED') DESC,"
            " received_at DESC LIMIT 1", found.tenant_id)
    finally:
        await pool.close()

    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(),
                                                   args=CHROMIUM_FLAGS)
        context = await browser.new_context(base_url=found.api, viewport=VIEWPORT,
                                            device_scale_factor=1)
        page = await context.new_page()
        await sign_in(page, str(found.tenant_id), email, password)
        await expect(page.locator("#live")).to_have_text("live")
        views = [v for v in await page.locator("#nav a").evaluate_all(
            "links => links.map(a => a.dataset.view)") if v]
        shots = [(name, name, f"#/{name}") for name in views]
        if order_id is not None:
            shots.append(("order", "orders", f"#/orders/{order_id}"))
        for name, view, hash_path in shots:
            await page.goto(f"/{hash_path}")
            # The live stream keeps a request open, so no "network idle": the view has drawn.
            shown = page.locator(f'#view[data-view="{view}"] > div')
            await expect(shown).not_to_be_empty(timeout=30_000)
            await page.wait_for_timeout(SETTLE_MS)
            path = args.out / f"{name}.png"
            await page.screenshot(path=str(path))
            written.append(path)
        await context.close()
        await browser.close()
    return written


if __name__ == "__main__":
    sys.exit(main())
