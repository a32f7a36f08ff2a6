"""All three simulators on real loopback ports in one process, sharing one clock."""

from __future__ import annotations

import httpx

from sandbox.server import SandboxConfig, serve_sandboxes


async def test_serve_sandboxes_on_loopback_ports() -> None:
    config = SandboxConfig(seed=1, speedup=1000.0)
    running = await serve_sandboxes(config)
    try:
        assert set(running.urls) == {"shopify", "simplyprint", "sendcloud"}
        assert all(url.startswith("http://127.0.0.1:") for url in running.urls.values())
        async with httpx.AsyncClient(timeout=5.0) as client:
            shop = await client.get(
                f"{running.urls['shopify']}/admin/api/2024-07/orders.json",
                headers={"X-Shopify-Access-Token": config.shopify.access_token},
            )
            assert shop.status_code == 200 and shop.json() == {"orders": []}
            sp = await client.get(
                f"{running.urls['simplyprint']}/{config.simplyprint.company_id}/account/Test",
                headers={"X-API-KEY": config.simplyprint.api_key},
            )
            assert sp.json()["status"] is True
            sc = await client.get(
                f"{running.urls['sendcloud']}/api/v2/parcels/statuses",
                auth=(config.sendcloud.public_key, config.sendcloud.secret_key),
            )
            assert sc.status_code == 200
            parcel = await client.post(
                f"{running.urls['sendcloud']}/api/v2/parcels",
                auth=(config.sendcloud.public_key, config.sendcloud.secret_key),
                json={
                    "parcel": {
                        "name": "A",
                        "address": "Kerkstraat 1",
                        "city": "Utrecht",
                        "postal_code": "3511 AA",
                        "country": "NL",
                        "request_label": True,
                        "shipment": {"id": 8},
                    }
                },
            )
            label = parcel.json()["parcel"]["label"]["label_printer"]
            assert label.startswith(running.urls["sendcloud"])
            pdf = await client.get(
                label, auth=(config.sendcloud.public_key, config.sendcloud.secret_key)
            )
            assert pdf.content.startswith(b"%PDF-")
        clocks = {id(s.clock) for s in (running.sandboxes.shopify, running.sandboxes.sendcloud)}
        assert clocks == {id(running.sandboxes.simplyprint.clock)}
    finally:
        await running.stop()
