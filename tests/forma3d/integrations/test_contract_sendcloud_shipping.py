"""Contract: the shipping interface in both Sendcloud API versions (v2 parcels, v3 shipments)
against the Sendcloud simulator, in-process over ASGI. Both sides follow the v2 and v3 OpenAPI
documents in shared/reference; a failure means one of them left the reference."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from forma3d.domain.shipping.states import ShipmentStatus
from forma3d.integrations.errors import (
    AuthenticationError,
    RateLimitedError,
    RejectedError,
)
from forma3d.integrations.retry import RetryPolicy
from forma3d.integrations.sendcloud import CancelOutcome, SendcloudClient
from forma3d.integrations.sendcloud_shipping import (
    ApiVersion,
    ApiVersionRefused,
    Destination,
    ParcelShipping,
    ShipmentOrder,
    ShipmentShipping,
    Shipping,
    probe_access,
)
from forma3d.integrations.sendcloud_v3 import Address, SendcloudV3Client, ShipmentRequest
from tests.forma3d.integrations.test_contract_sandbox import (
    Sandbox,
    close_sandbox,
    config_for,
    open_sandbox,
)
from tests.forma3d.integrations.transports import DropAnswer

VERSIONS: tuple[ApiVersion, ...] = ("v2", "v3")
HOST = "http://sendcloud.sandbox"


def v3_client(box: Sandbox, transport: httpx.AsyncBaseTransport | None = None,
              secret: str | None = None) -> SendcloudV3Client:
    sc = box.config.sendcloud
    return SendcloudV3Client(sc.public_key, secret or sc.secret_key, base_url=f"{HOST}/api/v3",
                             transport=transport or box.transport(box.sendcloud_app),
                             sleep=box.sleep, rng=random.Random(4),
                             retry=RetryPolicy(max_attempts=3))


def shipping(box: Sandbox, version: ApiVersion, *, option: str | None = "postnl:standard",
             transport: DropAnswer | None = None) -> Shipping:
    transport = transport or box.transport(box.sendcloud_app)
    if version == "v3":
        return ShipmentShipping(v3_client(box, transport), shipping_option_code=option)
    sc = box.config.sendcloud
    return ParcelShipping(SendcloudClient(
        sc.public_key, sc.secret_key, base_url=f"{HOST}/api/v2", transport=transport,
        sleep=box.sleep, rng=random.Random(5), retry=RetryPolicy(max_attempts=3)))


def order(reference: str, **changes: Any) -> ShipmentOrder:
    destination = {"name": "Bob Norman", "street": "Stadhuisplein", "house_number": "10",
                   "city": "Eindhoven", "postal_code": "5611 EM", "country": "NL",
                   **changes.pop("to", {})}
    fields: dict[str, Any] = {"reference": reference, "weight_kg": "0.350",
                              "order_number": "#1001", "total_price": Decimal("49.00"),
                              "currency": "EUR", "destination": Destination(**destination),
                              **changes}
    return ShipmentOrder(**fields)


@pytest.fixture
async def box() -> AsyncIterator[Sandbox]:
    sandbox = await open_sandbox(config_for())
    try:
        yield sandbox
    finally:
        await close_sandbox(sandbox)


def parcel_data(box: Sandbox, parcel_id: int) -> dict[str, Any]:
    data: dict[str, Any] = box.sendcloud_app.state.sandbox.parcels[parcel_id].data
    return data


@pytest.mark.parametrize("version", VERSIONS)
async def test_create_announces_with_a_label_once_per_reference(box: Sandbox,
                                                                version: ApiVersion) -> None:
    transport = box.transport(box.sendcloud_app)
    async with shipping(box, version, transport=transport) as carrier:
        transport.drop_next_post = True  # Sendcloud announced it; the answer was lost
        created = await carrier.create(order("ref-1"))
        again = await carrier.create(order("ref-1"))
        status = await carrier.status(created.parcel_id, created.shipment_id)
    assert created.api_version == version
    assert created.status is ShipmentStatus.LABEL_CREATED
    assert created.label.startswith(b"%PDF")
    assert created.tracking_number and created.tracking_url and created.carrier == "postnl"
    assert (again.parcel_id, again.shipment_id) == (created.parcel_id, created.shipment_id)
    assert len(box.sendcloud_app.state.sandbox.parcels) == 1  # one label bought, not two
    assert (version == "v3") == (created.shipment_id is not None)
    assert status.status is ShipmentStatus.LABEL_CREATED
    assert status.tracking_number == created.tracking_number
    assert (status.status_code, status.status_id) == (
        ("READY_TO_SEND", None) if version == "v3" else (None, 1000))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("country", "province", "v2_state", "v3_state"), [
    ("US", "NY", "NY", "US-NY"), ("CA", "QC", "QC", "CA-QC"), ("IT", "RM", "RM", "IT-RM"),
    ("AU", "NSW", "NSW", "AU-NSW")])
async def test_state_codes_in_each_version_form(box: Sandbox, version: ApiVersion,
                                                country: str, province: str, v2_state: str,
                                                v3_state: str) -> None:
    option = "ups:standard" if version == "v3" else None
    box.config.sendcloud.shipping_methods[3]["countries"].append(
        {"id": 99, "name": country, "iso_2": country, "iso_3": country, "price": 20.0})
    async with shipping(box, version, option=option) as carrier:
        created = await carrier.create(order(f"ref-{country}", to={
            "country": country, "province_code": province, "postal_code": "10001"}))
    data = parcel_data(box, created.parcel_id)
    assert data["to_state"] == v2_state
    if version == "v3":
        async with v3_client(box) as client:
            shipment = await client.get_shipment(created.shipment_id or "")
        assert shipment.to_address is not None
        assert shipment.to_address["state_province_code"] == v3_state


async def test_v3_refuses_a_missing_or_bare_state_with_its_pointer(box: Sandbox) -> None:
    us = {"name": "Ann", "address_line_1": "5th Avenue 1", "postal_code": "10001",
          "city": "New York", "country_code": "US"}
    async with v3_client(box) as client:
        with pytest.raises(RejectedError) as missing:
            await client.announce_shipment(ShipmentRequest(
                "ref-us-1", Address(**us), "1.000", shipping_option_code="ups:standard",
                from_address=Address(**{**us, "country_code": "NL"})))
        with pytest.raises(RejectedError) as bare:
            await client.announce_shipment(ShipmentRequest(
                "ref-us-2", Address(**us, state_province_code="NY"), "1.000",
                shipping_option_code="ups:standard",
                from_address=Address(**{**us, "country_code": "NL"})))
    assert missing.value.status == 400
    assert "/to_address/state_province_code" in missing.value.message
    assert "ISO 3166-2" in bare.value.message


@pytest.mark.parametrize("version", VERSIONS)
async def test_dimensions_and_weight_in_the_documented_units(box: Sandbox,
                                                            version: ApiVersion) -> None:
    async with shipping(box, version) as carrier:
        created = await carrier.create(order("ref-dims", weight_kg="1.250", dimensions_cm=(
            Decimal("30"), Decimal("20.5"), Decimal("10"))))
    data = parcel_data(box, created.parcel_id)
    assert (data["length"], data["width"], data["height"]) == ("30.00", "20.50", "10.00")
    assert data["weight"] == "1.250"


async def test_v3_converts_grams_and_millimetres(box: Sandbox) -> None:
    nl = {"name": "Ann", "address_line_1": "Stadhuisplein 10", "postal_code": "5611 EM",
          "city": "Eindhoven", "country_code": "NL"}
    request = ShipmentRequest("ref-g", Address(**nl), "0", shipping_option_code="postnl:standard",
                              from_address=Address(**nl),
                              extra={"parcels": [{"weight": {"value": "1500", "unit": "g"},
                                                  "dimensions": {"length": "300", "width": "200",
                                                                 "height": "100",
                                                                 "unit": "mm"}}]})
    async with v3_client(box) as client:
        shipment = await client.announce_shipment(request)
    parcel = shipment.parcel
    assert parcel is not None
    assert parcel.raw["weight"] == {"value": "1.500", "unit": "kg"}
    assert parcel.raw["dimensions"]["length"] == "30.00"


@pytest.mark.parametrize("version", VERSIONS)
async def test_service_point_reaches_the_parcel(box: Sandbox, version: ApiVersion) -> None:
    async with shipping(box, version) as carrier:
        created = await carrier.create(order("ref-sp", service_point_id="10875349"))
    assert str(parcel_data(box, created.parcel_id)["to_service_point"]) == "10875349"


async def test_v3_service_point_refused_when_the_integration_has_none() -> None:
    box = await open_sandbox(config_for(sendcloud={"service_point_enabled": False}))
    try:
        async with shipping(box, "v3") as carrier:
            with pytest.raises(RejectedError) as info:
                await carrier.create(order("ref-sp", service_point_id="10875349"))
        assert "Service point support is not activated" in info.value.message
    finally:
        await close_sandbox(box)


@pytest.mark.parametrize("version", VERSIONS)
async def test_cancel_queues_then_rejects_a_repeat(box: Sandbox, version: ApiVersion) -> None:
    async with shipping(box, version) as carrier:
        created = await carrier.create(order("ref-c"))
        queued = await carrier.cancel(created.parcel_id, created.shipment_id)
        repeated = await carrier.cancel(created.parcel_id, created.shipment_id)
        status = await carrier.status(created.parcel_id, created.shipment_id)
    assert queued.outcome is CancelOutcome.QUEUED and queued.http_status == 202
    assert repeated.outcome is CancelOutcome.REJECTED
    assert repeated.http_status == (409 if version == "v3" else 400)
    assert status.status is ShipmentStatus.CANCEL_REQUESTED


async def test_v3_cancel_of_an_unknown_shipment_is_not_found(box: Sandbox) -> None:
    async with v3_client(box) as client:
        result = await client.cancel_shipment("no-such-shipment")
    assert result.outcome is CancelOutcome.NOT_FOUND and result.message == "Not found"


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_failed_announcement_is_a_refusal_with_the_carrier_reason(
        version: ApiVersion) -> None:
    box = await open_sandbox(config_for(sendcloud={"announcement_failure_rate": 1.0}))
    try:
        async with shipping(box, version) as carrier:
            with pytest.raises(RejectedError) as info:
                await carrier.create(order("ref-f"))
        assert "announcement failed" in info.value.message
        assert "rejected the announcement" in info.value.message
    finally:
        await close_sandbox(box)


async def test_v3_without_an_option_code_uses_the_account_rules(box: Sandbox) -> None:
    async with shipping(box, "v3", option=None) as carrier:
        created = await carrier.create(order("ref-rules"))
    assert created.status is ShipmentStatus.LABEL_CREATED and created.carrier == "postnl"


async def test_v2_parcels_refused_for_an_account_opened_after_the_cutoff() -> None:
    box = await open_sandbox(config_for(sendcloud={"account_created": "2026-05-02"}))
    try:
        async with shipping(box, "v2") as v2:
            with pytest.raises(ApiVersionRefused) as info:
                await v2.create(order("ref-new"))
        async with shipping(box, "v3") as v3:
            created = await v3.create(order("ref-new"))
        assert info.value.status == 403 and "closed to new users" in info.value.message
        assert "api_version v3" in ApiVersionRefused.action
        assert created.status is ShipmentStatus.LABEL_CREATED
    finally:
        await close_sandbox(box)


async def test_v3_errors_map_to_typed_errors(box: Sandbox) -> None:
    async with v3_client(box, secret="wrong") as client:
        with pytest.raises(AuthenticationError):
            await client.auth_metadata()
    box.sendcloud_app.state.sandbox.limits_safe.reset()
    box.sendcloud_app.state.sandbox.limits_safe.windows[0].limit = 1
    async with v3_client(box) as client:
        assert await client.auth_metadata() == {"user_id": 1, "integration_id": 1}
        with pytest.raises(RateLimitedError) as info:
            await client.auth_metadata()
    assert info.value.attempts == 3  # retried by the one policy before giving up


@pytest.mark.parametrize(("opened", "v2_open"), [("2025-06-01", True), ("2026-04-13", False)])
async def test_the_credential_probe_tells_whether_v2_parcels_are_open(opened: str,
                                                                     v2_open: bool) -> None:
    box = await open_sandbox(config_for(sendcloud={"account_created": opened}))
    try:
        v2 = shipping(box, "v2")
        assert isinstance(v2, ParcelShipping)
        async with v3_client(box) as v3, v2.client:
            access = await probe_access(v3, v2.client)
        assert access.v2_parcels is v2_open and access.integration_id == 1
        assert access.recommended == "v3"
        assert not box.sendcloud_app.state.sandbox.parcels  # the probe bought nothing
        async with v3_client(box, secret="wrong") as bad, v2.client:
            with pytest.raises(AuthenticationError):
                await probe_access(bad, v2.client)
    finally:
        await close_sandbox(box)
