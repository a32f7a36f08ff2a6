"""Contract: the three API clients against the sandbox simulators, in-process over ASGI.

Both sides are built from shared/reference; a failure here means one of them left the reference.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from forma3d.integrations.errors import (
    AuthenticationError,
    RateLimitedError,
    RejectedError,
)
from forma3d.integrations.retry import RetryPolicy
from forma3d.integrations.sendcloud import CancelOutcome, ParcelRequest, SendcloudClient
from forma3d.integrations.shopify import FulfillmentOrderLines, ShopifyClient, TrackingInfo
from forma3d.integrations.simplyprint import CancelReason, SimplyPrintClient
from sandbox.server import SandboxConfig, build_apps
from tests.forma3d.integrations.transports import DropAnswer

GCODE = b"; sandbox contract test\nG28\nG1 X10 Y10\n"


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@dataclass
class Sandbox:
    config: SandboxConfig
    shopify_app: Starlette
    simplyprint_app: Starlette
    sendcloud_app: Starlette
    sleep: FakeSleep

    def transport(self, app: Starlette) -> DropAnswer:
        return DropAnswer(httpx.ASGITransport(app=app))

    def shopify(self, token: str | None = None) -> tuple[ShopifyClient, DropAnswer]:
        transport = self.transport(self.shopify_app)
        client = ShopifyClient(
            self.config.shopify.shop_domain,
            token or self.config.shopify.access_token,
            base_url="http://shopify.sandbox",
            transport=transport,
            sleep=self.sleep,
            rng=random.Random(1),
            retry=RetryPolicy(max_attempts=3),
        )
        return client, transport

    def simplyprint(self, key: str | None = None) -> tuple[SimplyPrintClient, DropAnswer]:
        transport = self.transport(self.simplyprint_app)
        sp = self.config.simplyprint
        client = SimplyPrintClient(
            sp.company_id,
            key or sp.api_key,
            base_url="http://simplyprint.sandbox",
            files_url="http://simplyprint.sandbox",
            transport=transport,
            sleep=self.sleep,
            rng=random.Random(2),
            retry=RetryPolicy(max_attempts=3),
        )
        return client, transport

    def sendcloud(self) -> tuple[SendcloudClient, DropAnswer]:
        transport = self.transport(self.sendcloud_app)
        sc = self.config.sendcloud
        client = SendcloudClient(
            sc.public_key,
            sc.secret_key,
            base_url="http://sendcloud.sandbox/api/v2",
            transport=transport,
            sleep=self.sleep,
            rng=random.Random(3),
            retry=RetryPolicy(max_attempts=3),
        )
        return client, transport

    async def control(self, app: Starlette, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sandbox"
        ) as http:
            response = await http.request(method, path, json=body)
            response.raise_for_status()
            return response.json()


def config_for(**overrides: Any) -> SandboxConfig:
    base: dict[str, Any] = {"seed": 11, "speedup": 1.0, "simplyprint": {"auto_print": False}}
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value}
    return SandboxConfig.model_validate(base)


async def open_sandbox(config: SandboxConfig) -> Sandbox:
    shopify_app, simplyprint_app, sendcloud_app = build_apps(config)
    return Sandbox(config, shopify_app, simplyprint_app, sendcloud_app, FakeSleep())


async def close_sandbox(sandbox: Sandbox) -> None:
    await sandbox.simplyprint_app.state.sandbox.aclose()
    await sandbox.sendcloud_app.state.sandbox.aclose()
    await sandbox.shopify_app.state.sandbox.dispatcher.aclose()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    box = await open_sandbox(config_for())
    try:
        yield box
    finally:
        await close_sandbox(box)


# -- Shopify


async def test_shopify_backfill_pages_cover_every_order_once(sandbox: Sandbox) -> None:
    for _ in range(7):
        await sandbox.control(sandbox.shopify_app, "POST", "/_sandbox/orders", {})
    client, _ = sandbox.shopify()
    async with client:
        pages = [
            page
            async for page in client.list_order_pages(
                created_at_min="2000-01-01T00:00:00Z", limit=3
            )
        ]
        resumed = [o.id async for o in client.iter_orders(page_info=pages[0].next_page_info)]
    ids = [order.id for page in pages for order in page.orders]
    assert [len(page.orders) for page in pages] == [3, 3, 1]
    assert len(set(ids)) == 7
    assert pages[-1].next_page_info is None
    assert resumed == ids[3:]
    assert all(
        order.line_items and order.line_items[0].sku for page in pages for order in page.orders
    )


async def test_shopify_fulfil_with_tracking_once(sandbox: Sandbox) -> None:
    created = await sandbox.control(sandbox.shopify_app, "POST", "/_sandbox/orders", {})
    order_id = created["order"]["id"]
    client, transport = sandbox.shopify()
    async with client:
        order = await client.get_order(order_id)
        (fo,) = await client.get_fulfillment_orders(order_id)
        line = fo.line_items[0]
        assert line.line_item_id == order.line_items[0].id
        assert fo.status == "open" and "create_fulfillment" in fo.supported_actions
        tracking = TrackingInfo("3SSBX000000001", "https://track.example/3SSBX", "PostNL")
        transport.drop_next_post = True
        fulfillment = await client.create_fulfillment(
            order_id, [FulfillmentOrderLines(fo.id, {line.id: line.fulfillable_quantity})], tracking
        )
        again = await client.create_fulfillment(order_id, [FulfillmentOrderLines(fo.id)], tracking)
        updated = await client.update_tracking(fulfillment.id, TrackingInfo("3SSBX000000002"))
        after = await client.get_order(order_id)
    assert fulfillment.status == "success"
    assert fulfillment.tracking_number == "3SSBX000000001"
    assert fulfillment.tracking_company == "PostNL"
    assert again.id == fulfillment.id
    assert len(after.fulfillments) == 1
    assert updated.tracking_number == "3SSBX000000002"


async def test_shopify_bucket_pacing_and_429(sandbox: Sandbox) -> None:
    created = await sandbox.control(sandbox.shopify_app, "POST", "/_sandbox/orders", {})
    order_id = created["order"]["id"]
    await sandbox.control(
        sandbox.shopify_app,
        "POST",
        "/_sandbox/rate_limit",
        {"bucket_size": 10, "leak_rate": 0.0001, "reset": True},
    )
    client, _ = sandbox.shopify()
    async with client:
        for _ in range(10):
            await client.get_order(order_id)
        assert sandbox.sleep.calls  # slowed down as the bucket filled
        assert all(pause > 0 for pause in sandbox.sleep.calls)
        paced = len(sandbox.sleep.calls)
        with pytest.raises(RateLimitedError) as info:
            await client.get_order(order_id)
    assert info.value.status == 429 and info.value.retry_after == 2.0
    assert info.value.attempts == 3
    assert sandbox.sleep.calls[paced:].count(2.0) == 2
    assert "Exceeded" in info.value.message


async def test_shopify_bad_token(sandbox: Sandbox) -> None:
    client, _ = sandbox.shopify(token="shpat_wrong")
    async with client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_order(1)
    assert info.value.status == 401


# -- SimplyPrint


async def test_simplyprint_upload_queue_and_delete(sandbox: Sandbox) -> None:
    client, transport = sandbox.simplyprint()
    async with client:
        assert await client.test_connection()
        small = await client.upload_file("benchy.gcode", GCODE)
        chunked = await client.upload_file("benchy.gcode", GCODE, chunk_size=16)
        printers = await client.all_printers()
        target = printers[0]
        transport.drop_next_post = True
        item_id = await client.add_queue_item(
            file_id=small.id, for_printers=[target.id], amount=2, note="order-1:line-1:part-1"
        )
        listing = await client.get_queue_items()
        item = await client.get_queue_item(item_id)
        deleted = await client.delete_queue_item(item_id)
        deleted_again = await client.delete_queue_item(item_id)
        remaining = await client.get_queue_items()
    assert len(small.id) == 64 and small.name == "benchy.gcode"
    assert chunked.size == len(GCODE)
    assert [i.id for i in listing.items if i.note == "order-1:line-1:part-1"] == [item_id]
    assert item.left == 2 and item.assigned_to is not None
    assert item.assigned_to["printers"] == [target.id]
    assert (deleted, deleted_again) == (True, False)
    assert all(i.id != item_id for i in remaining.items)


async def test_simplyprint_jobs_and_printer_actions(sandbox: Sandbox) -> None:
    client, _ = sandbox.simplyprint()
    async with client:
        uploaded = await client.upload_file("benchy.gcode", GCODE)
        ready = [p for p in await client.all_printers() if p.state == "operational"]
        first, second = ready[0], ready[1]
        item_id = await client.add_queue_item(file_id=uploaded.id, note="queue-start")
        from_queue = await client.create_job(first.id, queue_item_id=item_id)
        direct = await client.create_job(second.id, file_id=uploaded.id)
        busy = await client.get_printer(first.id)
        with pytest.raises(RejectedError):
            await client.create_job(first.id, file_id=uploaded.id)
        ongoing = await client.get_print_jobs(printer_ids=[first.id], statuses=["ongoing"])
        details = await client.get_job_details(ongoing.jobs[0].uid)
        await client.pause(first.id)
        paused = await client.get_printer(first.id)
        await client.resume(first.id)
        await client.cancel([first.id], reason=CancelReason.OTHER, comment="contract test")
        cancelled = await client.get_print_jobs(printer_ids=[first.id], statuses=["cancelled"])
    assert len(from_queue.job_ids) == 1 and len(direct.job_ids) == 1
    assert busy.state == "printing" and busy.job is not None
    assert ongoing.jobs[0].id == from_queue.job_ids[0]
    assert ongoing.jobs[0].queue_item_id == item_id
    assert details.id == from_queue.job_ids[0] and details.printer_id == first.id
    assert paused.state in ("paused", "pausing")
    assert [j.id for j in cancelled.jobs] == from_queue.job_ids


async def test_simplyprint_set_order_moves_an_item_once_even_when_the_answer_is_lost(
    sandbox: Sandbox,
) -> None:
    client, transport = sandbox.simplyprint()
    async with client:
        uploaded = await client.upload_file("benchy.gcode", GCODE)
        a, b, c = [await client.add_queue_item(file_id=uploaded.id, note=n) for n in "abc"]
        await client.move_queue_item(c, start=2, end=0)
        first = [i.id for i in (await client.get_queue_items()).items]
        transport.drop_next_get = True  # SetOrder moves b, its answer is lost: the retry looks
        await client.move_queue_item(b, start=2, end=1)
        second = [i.id for i in (await client.get_queue_items()).items]
        with pytest.raises(RejectedError, match="not at position 0"):
            await client.move_queue_item(a, start=0, end=1)  # a stale listing is refused
    assert first == [c, a, b]
    assert second == [c, b, a]
    assert len(sandbox.sleep.calls) == 1  # one retry, which found the move done


async def test_simplyprint_set_order_needs_the_reorder_permission() -> None:
    box = await open_sandbox(config_for(simplyprint={"permissions": ["print_queue"]}))
    try:
        client, _ = box.simplyprint()
        async with client:
            uploaded = await client.upload_file("benchy.gcode", GCODE)
            a, b = [await client.add_queue_item(file_id=uploaded.id, note=n) for n in "ab"]
            with pytest.raises(AuthenticationError, match="reorder_queue"):
                await client.move_queue_item(b, start=1, end=0)
            assert [i.id for i in (await client.get_queue_items()).items] == [a, b]
    finally:
        await close_sandbox(box)


async def test_simplyprint_bad_key_is_an_auth_error(sandbox: Sandbox) -> None:
    client, _ = sandbox.simplyprint(key="nope")
    async with client:
        with pytest.raises(AuthenticationError):
            await client.get_printers()


# -- Sendcloud


def parcel(reference: str, **changes: Any) -> ParcelRequest:
    fields: dict[str, Any] = {
        "external_reference": reference,
        "name": "Bob Norman",
        "address": "Stadhuisplein 10",
        "city": "Eindhoven",
        "postal_code": "5611 EM",
        "country": "NL",
        "order_number": "#1001",
        "weight": Decimal("0.350"),
        "total_order_value": Decimal("49.00"),
        "total_order_value_currency": "EUR",
        **changes,
    }
    return ParcelRequest(**fields)


async def test_sendcloud_parcel_label_and_lookup(sandbox: Sandbox) -> None:
    client, transport = sandbox.sendcloud()
    async with client:
        methods = await client.list_shipping_methods(to_country="NL")
        method = methods[0]
        transport.drop_next_post = True
        created = await client.create_parcel(parcel("ref-1", shipping_method_id=method.id))
        again = await client.create_parcel(parcel("ref-1", shipping_method_id=method.id))
        fetched = await client.get_parcel(created.id)
        found = await client.find_parcel_by_external_reference("ref-1")
        a6 = await client.get_label_pdf(created.id)
        a4 = await client.get_label_pdf(created.id, start_from=3)
    assert method.id and method.countries
    assert created.status_id == 1000 and created.tracking_number
    assert created.shipping_method_id == method.id and created.carrier_code == method.carrier
    assert created.label_printer_url and created.error_text is None
    assert again.id == created.id == fetched.id
    assert found is not None and found.id == created.id
    assert a6.startswith(b"%PDF") and a4.startswith(b"%PDF")
    assert len(sandbox.sendcloud_app.state.sandbox.parcels) == 1


async def test_sendcloud_duplicate_reference_error_mode_returns_existing() -> None:
    box = await open_sandbox(config_for(sendcloud={"duplicate_external_reference": "error"}))
    try:
        client, _ = box.sendcloud()
        async with client:
            first = await client.create_parcel(parcel("ref-dup"))
            second = await client.create_parcel(parcel("ref-dup"))
            with pytest.raises(RejectedError) as info:
                await client.create_parcel(parcel("ref-bad", city=""))
        assert first.id == second.id
        assert info.value.status == 400 and "city" in info.value.message
    finally:
        await close_sandbox(box)


async def test_sendcloud_cancel_outcomes(sandbox: Sandbox) -> None:
    client, _ = sandbox.sendcloud()
    async with client:
        announced = await client.create_parcel(parcel("ref-a"))
        unannounced = await client.create_parcel(parcel("ref-u", request_label=False))
        queued = await client.cancel_parcel(announced.id)
        repeated = await client.cancel_parcel(announced.id)
        deleted = await client.cancel_parcel(unannounced.id)
        missing = await client.cancel_parcel(unannounced.id)
    assert unannounced.status_id == 999
    assert queued.outcome is CancelOutcome.QUEUED
    assert repeated.outcome is CancelOutcome.REJECTED
    assert deleted.outcome is CancelOutcome.CANCELLED
    assert missing.outcome is CancelOutcome.NOT_FOUND


async def test_sendcloud_failed_announcement_is_gone_on_cancel() -> None:
    box = await open_sandbox(config_for(sendcloud={"announcement_failure_rate": 1.0}))
    try:
        client, _ = box.sendcloud()
        async with client:
            failed = await client.create_parcel(parcel("ref-f"))
            result = await client.cancel_parcel(failed.id)
        assert failed.status_id == 1002 and failed.error_text
        assert result.outcome is CancelOutcome.GONE
    finally:
        await close_sandbox(box)
