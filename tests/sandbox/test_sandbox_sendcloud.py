"""Sendcloud simulator through httpx: parcels, idempotent external_reference, cancel codes, PDF
labels, 429, and the status journey with signed webhooks on a loopback port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sandbox_receiver import Receiver

from forma3d.integrations.signatures import verify_sendcloud
from sandbox.sendcloud import SendcloudSandbox
from sandbox.server import SandboxConfig, build_apps

HOUR = 3600.0


def parcel_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "Bob Norman",
        "address": "Stadhuisplein 10",
        "city": "Eindhoven",
        "postal_code": "5611 EM",
        "country": "NL",
        "email": "bob@example.com",
        "weight": "0.350",
        "order_number": "#1001",
        "shipment": {"id": 8},
        "request_label": True,
    }
    spec.update(extra)
    return spec


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def make(config: SandboxConfig) -> tuple[httpx.AsyncClient, SendcloudSandbox]:
    _, _, app = build_apps(config)
    sandbox: SendcloudSandbox = app.state.sandbox
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="https://panel.sendcloud.sc",
        auth=(sandbox.config.public_key, sandbox.config.secret_key),
    )
    return client, sandbox


@pytest.fixture
async def sc() -> AsyncIterator[tuple[httpx.AsyncClient, SendcloudSandbox]]:
    client, sandbox = make(SandboxConfig(seed=11, speedup=1.0))
    async with client:
        yield client, sandbox
    await sandbox.aclose()


async def test_basic_auth_and_error_envelope(
    sc: tuple[httpx.AsyncClient, SendcloudSandbox],
) -> None:
    client, _ = sc
    denied = await client.get("/api/v2/parcels", auth=("wrong", "key"))
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == 401
    missing = await client.post("/api/v2/parcels", json={"parcel": {"name": "x"}})
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert error["code"] == 400 and error["request"] == "api/v2/parcels"
    assert "address" in error["message"]
    assert (await client.get("/api/v2/parcels/999999")).status_code == 404


async def test_create_with_label_and_idempotent_external_reference(
    sc: tuple[httpx.AsyncClient, SendcloudSandbox],
) -> None:
    client, sandbox = sc
    first = await client.post(
        "/api/v2/parcels", json={"parcel": parcel_spec(external_reference="order-1001-1")}
    )
    assert first.status_code == 200
    parcel = first.json()["parcel"]
    assert parcel["status"] == {"id": 1000, "message": "Ready to send"}
    assert parcel["tracking_number"] and parcel["tracking_url"].startswith("https://")
    assert parcel["address_divided"] == {"street": "Stadhuisplein", "house_number": "10"}
    assert parcel["country"] == {"iso_2": "NL", "iso_3": "NLD", "name": "Netherlands"}
    assert parcel["weight"] == "0.350"
    assert parcel["shipment"] == {"id": 8, "name": "PostNL Standard 0-23kg"}
    assert len(parcel["label"]["normal_printer"]) == 4
    assert parcel["external_reference"] == "order-1001-1"

    again = await client.post(
        "/api/v2/parcels", json={"parcel": parcel_spec(external_reference="order-1001-1")}
    )
    assert again.status_code == 200
    assert again.json()["parcel"]["id"] == parcel["id"]
    assert again.json()["parcel"]["tracking_number"] == parcel["tracking_number"]
    assert len(sandbox.parcels) == 1
    listed = await client.get("/api/v2/parcels", params={"external_reference": "order-1001-1"})
    assert [p["id"] for p in listed.json()["parcels"]] == [parcel["id"]]
    fetched = await client.get(f"/api/v2/parcels/{parcel['id']}")
    assert fetched.json()["parcel"]["id"] == parcel["id"]


async def test_duplicate_external_reference_error_variant() -> None:
    config = SandboxConfig()
    config.sendcloud.duplicate_external_reference = "error"
    client, sandbox = make(config)
    async with client:
        ok = await client.post(
            "/api/v2/parcels", json={"parcel": parcel_spec(external_reference="r")}
        )
        dup = await client.post(
            "/api/v2/parcels", json={"parcel": parcel_spec(external_reference="r")}
        )
    assert ok.status_code == 200
    assert dup.status_code == 400 and "external_reference" in dup.json()["error"]["message"]
    await sandbox.aclose()


async def test_label_pdfs_are_real_pdfs(sc: tuple[httpx.AsyncClient, SendcloudSandbox]) -> None:
    client, _ = sc
    parcel = (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).json()["parcel"]
    a6 = await client.get(parcel["label"]["label_printer"])
    assert a6.status_code == 200 and a6.headers["content-type"] == "application/pdf"
    assert a6.content.startswith(b"%PDF-") and a6.content.rstrip().endswith(b"%%EOF")
    a4 = await client.get(parcel["label"]["normal_printer"][3])
    assert a4.content.startswith(b"%PDF-")
    links = (await client.get(f"/api/v2/labels/{parcel['id']}")).json()
    assert links["label"] == parcel["label"]
    doc = await client.get(f"/api/v2/parcels/{parcel['id']}/documents/label")
    assert doc.content.startswith(b"%PDF-")
    unlabelled = (
        await client.post("/api/v2/parcels", json={"parcel": parcel_spec(request_label=False)})
    ).json()["parcel"]
    assert unlabelled["status"]["id"] == 999
    missing = await client.get(f"/api/v2/labels/label_printer/{unlabelled['id']}")
    assert missing.status_code == 404
    announced = await client.put(
        "/api/v2/parcels", json={"parcel": {"id": unlabelled["id"], "request_label": True}}
    )
    assert announced.json()["parcel"]["status"]["id"] == 1000


async def test_cancel_status_codes(sc: tuple[httpx.AsyncClient, SendcloudSandbox]) -> None:
    client, sandbox = sc

    async def create(**extra: Any) -> dict[str, Any]:
        response = await client.post("/api/v2/parcels", json={"parcel": parcel_spec(**extra)})
        parcel: dict[str, Any] = response.json()["parcel"]
        return parcel

    unannounced = await create(request_label=False)
    deleted = await client.post(f"/api/v2/parcels/{unannounced['id']}/cancel")
    assert deleted.status_code == 200 and deleted.json()["status"] == "cancelled"
    assert (await client.get(f"/api/v2/parcels/{unannounced['id']}")).status_code == 404

    ready = await create()
    queued = await client.post(f"/api/v2/parcels/{ready['id']}/cancel")
    assert queued.status_code == 202
    assert sandbox.parcels[ready["id"]].data["status"]["id"] == 1999
    sandbox.clock.advance(2 * HOUR)
    await settle()
    assert sandbox.parcels[ready["id"]].data["status"]["id"] == 2000
    assert (await client.post(f"/api/v2/parcels/{ready['id']}/cancel")).status_code == 400

    moving = await create()
    sandbox.clock.advance(HOUR)  # 1000 -> 1 (announced)
    await settle()
    assert sandbox.parcels[moving["id"]].data["status"]["id"] == 1
    cancelled = await client.post(f"/api/v2/parcels/{moving['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json() == {"status": "cancelled", "message": "Parcel has been cancelled"}

    delivered = await create()
    sandbox.clock.advance(5 * HOUR)
    await settle()
    assert sandbox.parcels[delivered["id"]].data["status"]["id"] == 11
    assert (await client.post(f"/api/v2/parcels/{delivered['id']}/cancel")).status_code == 400
    assert (await client.post("/api/v2/parcels/4242/cancel")).status_code == 404


async def test_announcement_failure_cancel_is_410() -> None:
    config = SandboxConfig()
    config.sendcloud.announcement_failure_rate = 1.0
    client, sandbox = make(config)
    async with client:
        parcel = (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).json()
        assert parcel["parcel"]["status"]["id"] == 1002
        gone = await client.post(f"/api/v2/parcels/{parcel['parcel']['id']}/cancel")
    assert gone.status_code == 410
    await sandbox.aclose()


async def test_rate_limit_429_has_empty_body() -> None:
    config = SandboxConfig()
    config.sendcloud.unsafe_per_second = 2
    client, sandbox = make(config)
    async with client:
        codes = [
            (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).status_code
            for _ in range(3)
        ]
        throttled = await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})
        reads = await client.get("/api/v2/parcels/statuses")
    assert codes[:2] == [200, 200] and codes[2] == 429
    assert throttled.status_code == 429 and throttled.content == b""
    assert reads.status_code == 200
    await sandbox.aclose()


async def test_reference_lists(sc: tuple[httpx.AsyncClient, SendcloudSandbox]) -> None:
    client, _ = sc
    statuses = (await client.get("/api/v2/parcels/statuses")).json()
    assert {"id": 11, "message": "Delivered"} in statuses
    assert {"id": 2000, "message": "Cancelled"} in statuses
    methods = (await client.get("/api/v2/shipping_methods", params={"to_country": "NL"})).json()
    assert methods["next"] is None and methods["previous"] is None
    assert 8 in [m["id"] for m in methods["shipping_methods"]]
    assert all(any(c["iso_2"] == "NL" for c in m["countries"]) for m in methods["shipping_methods"])
    senders = (await client.get("/api/v2/user/addresses/sender")).json()["sender_addresses"]
    assert senders and {"id", "street", "house_number", "postal_code"} <= set(senders[0])


async def test_parcel_list_cursor_pagination(
    sc: tuple[httpx.AsyncClient, SendcloudSandbox],
) -> None:
    client, _ = sc
    ids = [
        (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).json()["parcel"][
            "id"
        ]
        for _ in range(5)
    ]
    page = (await client.get("/api/v2/parcels", params={"limit": 2})).json()
    seen = [p["id"] for p in page["parcels"]]
    assert page["previous"] is None
    while page["next"]:
        page = (await client.get(page["next"])).json()
        seen += [p["id"] for p in page["parcels"]]
    assert seen == ids
    bad = await client.get("/api/v2/parcels", params={"cursor": "!!"})
    assert bad.status_code == 404 and bad.json()["error"]["message"] == "Invalid cursor"


async def test_journey_posts_signed_status_webhooks(receiver: Receiver) -> None:
    config = SandboxConfig(speedup=1.0)
    config.sendcloud.webhook_targets = [receiver.url("sendcloud")]
    client, sandbox = make(config)
    async with client:
        parcel = (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).json()
        for _ in range(5):
            sandbox.clock.advance(HOUR)
            await settle()
        final = (await client.get(f"/api/v2/parcels/{parcel['parcel']['id']}")).json()
    assert final["parcel"]["status"] == {"id": 11, "message": "Delivered"}
    got = await receiver.wait_for("sendcloud", lambda r: len(r) >= 6)
    secret = config.sendcloud.secret_key
    ids = []
    stamps = []
    for delivery in got:
        assert verify_sendcloud(secret, delivery.body, delivery.headers["sendcloud-signature"])
        payload = json.loads(delivery.body)
        # Sendcloud serialises like Python's json.dumps with default separators.
        assert json.dumps(payload).encode() == delivery.body
        assert payload["action"] == "parcel_status_changed"
        ids.append(payload["parcel"]["status"]["id"])
        stamps.append(payload["timestamp"])
    assert ids == [1000, 1, 3, 5, 91, 11]
    assert stamps == sorted(stamps) and stamps[0] > 10**12  # epoch milliseconds
    await sandbox.aclose()


async def test_cancelled_parcel_stops_advancing(receiver: Receiver) -> None:
    config = SandboxConfig(speedup=1.0)
    config.sendcloud.webhook_targets = [receiver.url("stop")]
    client, sandbox = make(config)
    async with client:
        parcel = (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).json()
        pid = parcel["parcel"]["id"]
        sandbox.clock.advance(HOUR)
        await settle()
        assert (await client.post(f"/api/v2/parcels/{pid}/cancel")).status_code == 200
        sandbox.clock.advance(10 * HOUR)
        await settle()
        status = (await client.get(f"/api/v2/parcels/{pid}")).json()["parcel"]["status"]
    assert status["id"] == 2000
    got = await receiver.wait_for("stop", lambda r: len(r) >= 3)
    assert [json.loads(r.body)["parcel"]["status"]["id"] for r in got] == [1000, 1, 2000]
    await sandbox.dispatcher.drain()
    assert len(receiver.got("stop")) == 3
    await sandbox.aclose()


async def test_the_integration_webhook_url_is_where_parcel_webhooks_go(
        receiver: Receiver) -> None:
    config = SandboxConfig(speedup=1.0)
    client, sandbox = make(config)
    hook = f"/api/v2/integrations/{config.sendcloud.integration_id}"
    async with client:
        [listed] = (await client.get("/api/v2/integrations")).json()
        assert listed["webhook_active"] is False and listed["system"] == "api"
        refused = await client.patch(hook, json={"webhook_active": True})
        assert refused.status_code == 400 and "Webhook URL required" in refused.text
        partial = await client.put(hook, json={"webhook_url": receiver.url("integ")})
        assert partial.status_code == 400 and "This field is required" in partial.text
        missing = await client.patch("/api/v2/integrations/999", json={})
        assert missing.status_code == 404
        set_v3 = await client.patch(
            f"/api/v3/integrations/{config.sendcloud.integration_id}",
            json={"webhook_active": True, "webhook_url": receiver.url("integ")})
        assert set_v3.status_code == 204
        parcel = (await client.post("/api/v2/parcels", json={"parcel": parcel_spec()})).json()
        got = await receiver.wait_for("integ", lambda r: len(r) >= 1)
        assert json.loads(got[0].body)["parcel"]["id"] == parcel["parcel"]["id"]
        off = await client.patch(hook, json={"webhook_active": False})
        assert off.status_code == 200 and "id" not in off.json()
        sandbox.clock.advance(HOUR)
        await settle()
        await sandbox.dispatcher.drain()
        assert len(receiver.got("integ")) == 1  # switched off: nothing more
        v3 = (await client.get("/api/v3/integrations")).json()["data"][0]
        assert v3["webhook_active"] is False and v3["type"] == "api"
    await sandbox.aclose()
