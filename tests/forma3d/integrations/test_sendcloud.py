"""SendcloudClient against a small Starlette app answering with OpenAPI v2 documented payloads."""

from __future__ import annotations

import base64
import copy
import json
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.integrations.errors import (
    AuthenticationError,
    RejectedError,
    UnexpectedResponseError,
)
from forma3d.integrations.retry import RetryPolicy
from forma3d.integrations.sendcloud import (
    CancelOutcome,
    ParcelRequest,
    SendcloudClient,
)
from tests.forma3d.integrations.transports import DropAnswer

PUBLIC, SECRET = "pub", "sec"
PDF = b"%PDF-1.4\n% label\n%%EOF\n"

# Reference 3.2 (documented create response).
PARCEL: dict[str, Any] = {
    "id": 3,
    "name": "John Doe",
    "company_name": "Sendcloud",
    "contract": 1,
    "address": "Stadhuisplein 10",
    "address_2": "",
    "address_divided": {"street": "Stadhuisplein", "house_number": "10"},
    "city": "Eindhoven",
    "postal_code": "5611 EM",
    "telephone": "0612345678",
    "email": "",
    "country": {"iso_2": "NL", "iso_3": "NLD", "name": "Netherlands"},
    "date_created": "01-01-2018 21:45:30",
    "date_updated": "01-01-2018 21:47:12",
    "date_announced": "01-01-2018 21:47:13",
    "tracking_number": "3SYZXG132912330",
    "tracking_url": "https://tracking.sendcloud.sc/forward?carrier=postnl&code=3SYZXG132912330",
    "weight": "2.000",
    "order_number": "ORD-1001",
    "external_reference": None,
    "reference": "0",
    "label": {
        "normal_printer": [
            f"https://panel.sendcloud.sc/api/v2/labels/normal_printer/3?start_from={n}"
            for n in range(4)
        ],
        "label_printer": "https://panel.sendcloud.sc/api/v2/labels/label_printer/3",
    },
    "documents": [
        {
            "type": "label",
            "size": "a6",
            "link": "https://panel.sendcloud.sc/api/v2/parcels/3/documents/label",
        }
    ],
    "status": {"id": 1000, "message": "Ready to send"},
    "shipment": {"id": 8, "name": "PostNL Standard 0-23kg"},
    "carrier": {"code": "postnl"},
    "is_return": False,
    "type": "parcel",
    "collo_nr": 0,
    "collo_count": 1,
    "parcel_items": [],
    "to_service_point": None,
    "total_order_value_currency": "EUR",
    "total_order_value": "11.11",
    "insured_value": 0,
    "total_insured_value": 0,
    "customs_declaration": {},
    "data": {},
    "errors": {},
}

SHIPPING_METHODS: dict[str, Any] = {
    "next": None,
    "previous": None,
    "shipping_methods": [
        {
            "id": 8020,
            "name": "DHLForYou Drop Off - Agecheck 18+",
            "carrier": "dhl",
            "min_weight": "0.001",
            "max_weight": "23.001",
            "service_point_input": "none",
            "price": 0,
            "countries": [
                {
                    "id": 2,
                    "name": "Netherlands",
                    "price": 9.75,
                    "iso_2": "NL",
                    "iso_3": "NLD",
                    "lead_time_hours": 24,
                    "price_breakdown": [
                        {"type": "price_without_insurance", "label": "Label", "value": 8.55}
                    ],
                }
            ],
        }
    ],
}

CANCEL_ANSWERS: dict[int, tuple[int, dict[str, Any] | None]] = {
    1: (200, {"status": "cancelled", "message": "Parcel has been cancelled"}),
    2: (202, None),
    3: (400, {"error": {"code": 400, "message": "Parcel is delivered", "request": "api/v2"}}),
    4: (404, {}),
    5: (410, {"status": "deleted", "message": "Parcel announcement failed"}),
}


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def error(code: int, message: str) -> Response:
    body = {"error": {"code": code, "message": message, "request": "api/v2/parcels"}}
    return JSONResponse(body, status_code=code)


class FakeSendcloud:
    def __init__(self) -> None:
        self.parcels: dict[int, dict[str, Any]] = {}
        self.creates: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.lookups: list[dict[str, str]] = []
        self.duplicate_is_error = True
        self.rate_limit_next = 0
        self.carrier_error: str | None = None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v2/parcels", self.parcels_route, methods=["GET", "POST"]),
                Route("/api/v2/parcels/{pid:int}", self.get_parcel),
                Route("/api/v2/parcels/{pid:int}/cancel", self.cancel, methods=["POST"]),
                Route("/api/v2/labels/label_printer/{pid:int}", self.label),
                Route("/api/v2/labels/normal_printer/{pid:int}", self.label),
                Route("/api/v2/shipping_methods", self.methods),
            ]
        )

    def gate(self, request: Request) -> Response | None:
        expected = "Basic " + base64.b64encode(f"{PUBLIC}:{SECRET}".encode()).decode()
        if request.headers.get("authorization") != expected:
            return error(401, "Invalid username/password.")
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            return Response(b"", status_code=429)
        return None

    async def parcels_route(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        if request.method == "GET":
            self.lookups.append(dict(request.query_params))
            ref = request.query_params.get("external_reference")
            found = [p for p in self.parcels.values() if p["external_reference"] == ref]
            return JSONResponse({"next": None, "previous": None, "parcels": found})
        body = json.loads(await request.body())
        self.creates.append((dict(request.query_params), body))
        spec = body["parcel"]
        if not spec.get("house_number"):
            return JSONResponse(
                {
                    "failed_parcels": [
                        {"parcel": {}, "errors": {"house_number": ["This field may not be blank."]}}
                    ]
                }
            )
        if self.carrier_error == "400":
            return error(400, "non_field_errors: 'PostNL service error: invalid email domain'")
        ref = spec["external_reference"]
        for existing in self.parcels.values():
            if existing["external_reference"] != ref:
                continue
            if self.duplicate_is_error:
                return error(400, "external_reference: Parcel with this reference already exists.")
            return JSONResponse({"parcel": existing})
        parcel = copy.deepcopy(PARCEL)
        parcel.update(id=len(self.parcels) + 3, external_reference=ref, name=spec["name"])
        if self.carrier_error:
            parcel["errors"] = {"non_field_errors": [self.carrier_error]}
        self.parcels[parcel["id"]] = parcel
        return JSONResponse({"parcel": parcel})

    async def get_parcel(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        parcel = self.parcels.get(request.path_params["pid"])
        if parcel is None:
            return error(404, "Not Found")
        return JSONResponse({"parcel": parcel})

    async def cancel(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        status, body = CANCEL_ANSWERS[request.path_params["pid"]]
        if body is None:
            return Response(status_code=status)
        return JSONResponse(body, status_code=status)

    async def label(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        if request.path_params["pid"] == 404:
            return JSONResponse({}, status_code=404)
        if request.path_params["pid"] == 500:
            return JSONResponse({"label": "not a pdf"})
        start = request.query_params.get("start_from", "a6")
        return Response(PDF + start.encode(), media_type="application/pdf")

    async def methods(self, request: Request) -> Response:
        if (denied := self.gate(request)) is not None:
            return denied
        self.lookups.append(dict(request.query_params))
        return JSONResponse(SHIPPING_METHODS)


@pytest.fixture
def fake() -> FakeSendcloud:
    return FakeSendcloud()


def client_for(
    fake: FakeSendcloud, sleep: FakeSleep | None = None, secret: str = SECRET
) -> tuple[SendcloudClient, DropAnswer]:
    transport = DropAnswer(httpx.ASGITransport(app=fake.app()), httpx.RemoteProtocolError)
    client = SendcloudClient(
        PUBLIC,
        secret,
        base_url="http://sendcloud.test/api/v2",
        transport=transport,
        sleep=sleep or FakeSleep(),
        rng=random.Random(5),
        retry=RetryPolicy(max_attempts=4),
    )
    return client, transport


def request(ref: str = "order-1001-shipment-1", **changes: Any) -> ParcelRequest:
    fields: dict[str, Any] = {
        "external_reference": ref,
        "name": "John Doe",
        "address": "Stadhuisplein",
        "house_number": "10",
        "city": "Eindhoven",
        "postal_code": "5611 EM",
        "country": "NL",
        "order_number": "ORD-1001",
        "shipping_method_id": 8,
        "weight": Decimal("2"),
        "total_order_value": Decimal("11.11"),
        "total_order_value_currency": "EUR",
        **changes,
    }
    return ParcelRequest(**fields)


async def test_create_parcel_with_label(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake)
    async with client:
        parcel = await client.create_parcel(request())
    ((query, body),) = fake.creates
    assert query == {"errors": "verbose-carrier"}
    assert body == {
        "parcel": {
            "external_reference": "order-1001-shipment-1",
            "name": "John Doe",
            "address": "Stadhuisplein",
            "house_number": "10",
            "city": "Eindhoven",
            "postal_code": "5611 EM",
            "country": "NL",
            "request_label": True,
            "order_number": "ORD-1001",
            "shipment": {"id": 8},
            "weight": "2.000",
            "total_order_value": "11.11",
            "total_order_value_currency": "EUR",
        }
    }
    assert parcel.id == 3 and parcel.status_id == 1000
    assert parcel.tracking_number == "3SYZXG132912330"
    assert parcel.carrier_code == "postnl" and parcel.shipping_method_id == 8
    assert parcel.label_printer_url == "https://panel.sendcloud.sc/api/v2/labels/label_printer/3"
    assert parcel.external_reference == "order-1001-shipment-1"
    assert parcel.error_text is None
    assert parcel.raw["address_divided"] == {"street": "Stadhuisplein", "house_number": "10"}


async def test_lost_answer_looks_up_instead_of_buying_a_second_label(fake: FakeSendcloud) -> None:
    client, transport = client_for(fake)
    transport.drop_next_post = True
    async with client:
        parcel = await client.create_parcel(request())
    assert len(fake.creates) == 1 and len(fake.parcels) == 1
    assert fake.lookups == [{"external_reference": "order-1001-shipment-1"}]
    assert parcel.id == 3


async def test_create_after_crash_returns_the_existing_parcel(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake)
    async with client:
        first = await client.create_parcel(request())
        again = await client.create_parcel(request())  # Sendcloud refuses the duplicate (400)
        fake.duplicate_is_error = False
        third = await client.create_parcel(request(), lookup_first=True)
    assert first.id == again.id == third.id
    assert len(fake.parcels) == 1
    assert len(fake.creates) == 2  # lookup_first found it without posting


async def test_carrier_error_400_is_rejected_with_message(fake: FakeSendcloud) -> None:
    fake.carrier_error = "400"
    client, _ = client_for(fake)
    async with client:
        with pytest.raises(RejectedError) as info:
            await client.create_parcel(request())
    assert info.value.status == 400 and info.value.service == "sendcloud"
    assert "PostNL service error" in info.value.message
    assert fake.lookups  # it looked for an earlier parcel before giving up


async def test_verbose_carrier_errors_on_a_created_parcel(fake: FakeSendcloud) -> None:
    fake.carrier_error = "PostNL service error: The domain for email address seems invalid."
    client, _ = client_for(fake)
    async with client:
        parcel = await client.create_parcel(request())
    assert parcel.id == 3
    assert parcel.error_text == (
        "non_field_errors: PostNL service error: The domain for email address seems invalid."
    )


async def test_failed_parcels_answer_is_rejected(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake)
    async with client:
        with pytest.raises(RejectedError) as info:
            await client.create_parcel(request(house_number=None))
    assert info.value.message == "parcel refused: house_number: This field may not be blank."


async def test_get_and_find_parcel(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake)
    async with client:
        created = await client.create_parcel(request())
        got = await client.get_parcel(created.id)
        found = await client.find_parcel_by_external_reference("order-1001-shipment-1")
        missing = await client.find_parcel_by_external_reference("nope")
    assert got.id == created.id and got.status is not None
    assert got.status.message == "Ready to send"
    assert found is not None and found.id == created.id
    assert missing is None


async def test_label_pdfs(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake)
    async with client:
        a6 = await client.get_label_pdf(3)
        a4 = await client.get_label_pdf(3, start_from=2)
        with pytest.raises(ValueError):
            await client.get_label_pdf(3, start_from=4)
        with pytest.raises(UnexpectedResponseError):
            await client.get_label_pdf(500)
    assert a6 == PDF + b"a6"
    assert a4 == PDF + b"2"


async def test_shipping_methods(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake)
    async with client:
        (method,) = await client.list_shipping_methods(to_country="NL", sender_address="all")
    assert fake.lookups[-1] == {"to_country": "NL", "sender_address": "all"}
    assert (method.id, method.carrier, method.max_weight) == (8020, "dhl", Decimal("23.001"))
    assert method.countries[0]["iso_2"] == "NL"


@pytest.mark.parametrize(
    ("parcel_id", "outcome", "message"),
    [
        (1, CancelOutcome.CANCELLED, "Parcel has been cancelled"),
        (2, CancelOutcome.QUEUED, "queued"),
        (3, CancelOutcome.REJECTED, "Parcel is delivered"),
        (4, CancelOutcome.NOT_FOUND, "not_found"),
        (5, CancelOutcome.GONE, "Parcel announcement failed"),
    ],
)
async def test_cancel_outcomes(
    fake: FakeSendcloud, parcel_id: int, outcome: CancelOutcome, message: str
) -> None:
    client, _ = client_for(fake)
    async with client:
        result = await client.cancel_parcel(parcel_id)
    assert result.outcome is outcome
    assert result.message == message
    assert result.is_final == (outcome in {"cancelled", "not_found", "gone"})


async def test_429_with_empty_body_backs_off(fake: FakeSendcloud) -> None:
    sleep = FakeSleep()
    fake.rate_limit_next = 2
    client, _ = client_for(fake, sleep)
    async with client:
        parcel = await client.create_parcel(request())
    assert parcel.id == 3 and len(fake.creates) == 1
    assert len(sleep.calls) == 2 and all(0 <= s <= 1.0 for s in sleep.calls)


async def test_bad_keys(fake: FakeSendcloud) -> None:
    client, _ = client_for(fake, secret="wrong")
    async with client:
        with pytest.raises(AuthenticationError) as info:
            await client.get_parcel(3)
    assert info.value.message == "Invalid username/password."
