"""Sendcloud simulator, Public REST API 3.0: the shipment operations we use, per v3_openapi.json.

Served under ``/api/v3/`` on the Sendcloud sandbox host, over the same account and parcels as
v2: a v3 shipment owns one v2-style parcel record, so labels, the carrier journey and the signed
``parcel_status_changed`` webhooks are the same machinery. Errors use v3's
``{"errors": [{status, code, detail, source}]}``. Where the document is silent (status codes of
carrier milestones, the 401 body) the choice is marked as inferred.
"""

from __future__ import annotations

import base64
import itertools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.control import read_json
from sandbox.label import label_pdf
from sandbox.sendcloud import (
    CANCELLED,
    CANCELLING,
    DELIVERED,
    STATUS_MESSAGES,
    ParcelRecord,
    SendcloudSandbox,
    authorized,
    throttled,
)

# The sandbox's shipping methods as v3 shipping option codes.
SHIPPING_OPTIONS: dict[str, int] = {
    "postnl:standard": 8,
    "dhl:foryou/dropoff": 8020,
    "dpd:home": 1317,
    "ups:standard": 1319,
    "dhl:servicepoint": 8030,
}
STATE_REQUIRED = {"US", "CA", "IT", "AU"}
ISO_3166_2 = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
KG_PER = {"kg": Decimal(1), "g": Decimal("0.001"), "lbs": Decimal("0.45359237"),
          "oz": Decimal("0.028349523125")}
CM_PER = {"cm": Decimal(1), "mm": Decimal("0.1"), "m": Decimal(100), "in": Decimal("2.54"),
          "ft": Decimal("30.48"), "yd": Decimal("91.44")}
# v2 numeric ids as v3 codes. READY_TO_SEND, ANNOUNCING, ANNOUNCED, ANNOUNCEMENT_FAILED,
# CANCELLED, IN_TRANSIT and DELIVERED appear in the reference; the rest are inferred.
_CODES: dict[int, str] = {999: "NO_LABEL", 1000: "READY_TO_SEND", 1001: "ANNOUNCING",
                          1002: "ANNOUNCEMENT_FAILED", 1: "ANNOUNCED", 13: "ANNOUNCED",
                          11: "DELIVERED", 93: "DELIVERED", 1999: "CANCELLATION_REQUESTED",
                          2001: "CANCELLATION_REQUESTED", 1998: "CANCELLED", 2000: "CANCELLED"}
_EXCEPTIONS = {15, 6, 8, 80, 94, 62991, 62992, 62996, 62997}


def status_code(status_id: int) -> str:
    if status_id in _CODES:
        return _CODES[status_id]
    return "EXCEPTION" if status_id in _EXCEPTIONS else "IN_TRANSIT"


class Refusal(Exception):
    """A v3 error answer: HTTP status, code, detail and the JSON pointer of the culprit."""

    def __init__(self, status: int, detail: str, pointer: str | None = None,
                 code: str = "invalid") -> None:
        super().__init__(detail)
        self.status, self.detail, self.pointer, self.code = status, detail, pointer, code

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"status": str(self.status), "code": self.code,
                                 "detail": self.detail}
        if self.pointer:
            error["source"] = {"pointer": self.pointer}
        return JSONResponse({"errors": [error]}, status_code=self.status)


@dataclass
class V3Shipment:
    id: str
    request: dict[str, Any]
    parcel_id: int
    errors: list[dict[str, Any]]


class SendcloudV3:
    """v3 shipments of one sandbox account; each holds the id of its parcel record."""

    def __init__(self, sandbox: SendcloudSandbox) -> None:
        self.sandbox = sandbox
        self.shipments: dict[str, V3Shipment] = {}
        self._ids = itertools.count(1)

    # -- views

    def parcel_view(self, record: ParcelRecord, base: str, *, label: bool) -> dict[str, Any]:
        data = record.data
        status_id = int(data["status"]["id"])
        view: dict[str, Any] = {
            "id": data["id"],
            "status": {"code": status_code(status_id), "message": data["status"]["message"]},
            "tracking_number": data["tracking_number"] or None,
            "tracking_url": data["tracking_url"] or None,
            "weight": {"value": data["weight"], "unit": "kg"},
            "documents": [],
            "additional_carrier_data": {"awb_tracking_number": None, "box_number": None},
            "parcel_items": data["parcel_items"],
        }
        if data.get("length"):
            view["dimensions"] = {"length": data["length"], "width": data["width"],
                                  "height": data["height"], "unit": "cm"}
        if data.get("label") is not None:
            view["documents"] = [{"type": "label", "size": "a6",
                                  "link": f"{base}/api/v3/parcels/{data['id']}/documents/label"}]
            if label:
                view["label_file"] = base64.b64encode(label_pdf(data)).decode()
        return view

    def view(self, shipment: V3Shipment, base: str, *, label: bool = False) -> dict[str, Any]:
        record = self.sandbox.parcels.get(shipment.parcel_id)
        parcels = [] if record is None else [self.parcel_view(record, base, label=label)]
        return {**shipment.request, "id": shipment.id, "parcels": parcels,
                "errors": shipment.errors}

    def by_reference(self, reference: str) -> V3Shipment | None:
        return next((s for s in self.shipments.values()
                     if s.request.get("external_reference_id") == reference), None)

    # -- announce

    def announce(self, body: Any, base: str, *, rules: bool) -> V3Shipment:
        if not isinstance(body, dict):
            raise Refusal(400, "The request body must be an object.", "/")
        if rules:
            body = self._apply_defaults(body)
        to = _address(body.get("to_address"), "/to_address")
        _address(body.get("from_address"), "/from_address")
        option = _option(body.get("ship_with"))
        parcels = body.get("parcels")
        if not isinstance(parcels, list) or not 1 <= len(parcels) <= 15:
            raise Refusal(400, "Between 1 and 15 parcels are required.", "/parcels")
        if len(parcels) != 1:
            raise Refusal(400, "The sandbox ships one parcel per shipment.", "/parcels")
        weight_kg = _weight(parcels[0].get("weight") if isinstance(parcels[0], dict) else None)
        dims = _dimensions(parcels[0].get("dimensions"))
        reference = body.get("external_reference_id")
        if reference is not None and self.by_reference(str(reference)) is not None:
            raise Refusal(409, "A shipment with this external_reference_id already exists.",
                          "/external_reference_id", code="duplicate")
        point = body.get("to_service_point")
        if point is not None:
            if not isinstance(point, dict) or not str(point.get("id") or "").strip():
                raise Refusal(400, "This field is required.", "/to_service_point/id", "required")
            if not self.sandbox.config.service_point_enabled:
                raise Refusal(400, "Service point support is not activated for this "
                              "integration", "/to_service_point")
        state = to.get("state_province_code")
        spec: dict[str, Any] = {
            "name": to["name"], "company_name": to.get("company_name"),
            "address": to["address_line_1"], "house_number": to.get("house_number"),
            "address_2": to.get("address_line_2"), "city": to["city"],
            "postal_code": to["postal_code"], "country": to["country_code"],
            "country_state": state.split("-", 1)[1] if state else None,
            "telephone": to.get("phone_number"), "email": to.get("email"),
            "order_number": body.get("order_number"), "weight": f"{weight_kg:.3f}",
            "shipment": {"id": SHIPPING_OPTIONS[option]}, "request_label": True,
            "to_service_point": str(point["id"]) if point else None,
            "parcel_items": parcels[0].get("parcel_items") or [],
            **({} if dims is None else dims),
        }
        try:
            record, _ = self.sandbox.create(spec, base)
        except ValueError as exc:
            name, _, message = str(exc).partition(": ")
            raise Refusal(400, message or str(exc), f"/{name}") from exc
        errors: list[dict[str, Any]] = []
        if int(record.data["status"]["id"]) == 1002:
            errors = [{"status": "500", "code": "parcel_announcement_error",
                       "detail": "Service error: the sandbox carrier rejected the "
                                 "announcement."}]
        kept = {k: v for k, v in body.items()
                if k not in ("parcels", "apply_shipping_rules", "apply_shipping_defaults")}
        shipment = V3Shipment(f"sbx-shp-{next(self._ids):08d}", kept, record.data["id"], errors)
        self.shipments[shipment.id] = shipment
        return shipment

    def _apply_defaults(self, body: dict[str, Any]) -> dict[str, Any]:
        """announce-with-shipping-rules: the account's first sender address and the first
        option that ships to the destination fill what the request left out."""
        body = dict(body)
        if "from_address" not in body and self.sandbox.config.sender_addresses:
            body["from_address"] = v3_sender(self.sandbox.config.sender_addresses[0])
        country = str((body.get("to_address") or {}).get("country_code") or "").upper()
        if "ship_with" not in body:
            for code, method_id in SHIPPING_OPTIONS.items():
                method = self.sandbox.method(method_id) or {"countries": []}
                if any(c["iso_2"] == country for c in method["countries"]):
                    body["ship_with"] = {"type": "shipping_option_code",
                                         "properties": {"shipping_option_code": code}}
                    break
        return body

    # -- cancel

    def cancel(self, shipment_id: str) -> tuple[int, dict[str, Any]]:
        """v2's cancel semantics in v3's answers: 200, 202, 404, 409."""
        shipment = self.shipments.get(shipment_id)
        record = None if shipment is None else self.sandbox.parcels.get(shipment.parcel_id)
        if shipment is None or record is None:
            raise Refusal(404, "Not found", code="not_found")
        status_id = int(record.data["status"]["id"])
        if status_id in CANCELLING:
            raise Refusal(409, "This shipment is already being cancelled.")
        if status_id in CANCELLED | DELIVERED or status_id == 1002:
            raise Refusal(409, "This shipment can no longer be cancelled.")
        status, body = self.sandbox.cancel(shipment.parcel_id)
        if status == 202:
            return 202, {"data": {"status": "queued",
                                  "message": "Shipment cancellation has been queued"}}
        if status == 200:
            return 200, {"data": {"status": "cancelled",
                                  "message": "Shipment has been cancelled"}}
        raise Refusal(409, str(body.get("message") or "Cancellation rejected"))


def v3_sender(row: dict[str, Any]) -> dict[str, Any]:
    """A v2 sender address row in v3's Address shape."""
    return {"id": row["id"], "name": row.get("contact_name") or row.get("company_name"),
            "company_name": row.get("company_name"), "address_line_1": row.get("street"),
            "house_number": row.get("house_number"), "postal_code": row.get("postal_code"),
            "city": row.get("city"), "country_code": row.get("country"),
            "state_province_code": row.get("country_state"), "email": row.get("email"),
            "phone_number": row.get("telephone"),
            "signature": {"full_name": row.get("signature_full_name"),
                          "initials": row.get("signature_initials")}}


def _address(value: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Refusal(400, "This field is required.", pointer, "required")
    for name in ("name", "address_line_1", "postal_code", "city", "country_code"):
        if not str(value.get(name) or "").strip():
            raise Refusal(400, "This field is required.", f"{pointer}/{name}", "required")
    country = str(value["country_code"]).upper()
    state = value.get("state_province_code")
    if state:
        if not isinstance(state, str) or len(state) > 14 or not ISO_3166_2.match(state) \
                or not state.startswith(f"{country}-"):
            raise Refusal(400, f"{state!r} is not an ISO 3166-2 code of {country}.",
                          f"{pointer}/state_province_code")
    elif country in STATE_REQUIRED and pointer == "/to_address":
        raise Refusal(400, f"A state or province is required for {country}.",
                      f"{pointer}/state_province_code", "required")
    return value


def _option(value: Any) -> str:
    props = value.get("properties") if isinstance(value, dict) else None
    code = props.get("shipping_option_code") if isinstance(props, dict) else None
    if not isinstance(value, dict) or value.get("type") != "shipping_option_code" or not code:
        raise Refusal(400, "This field is required.",
                      "/ship_with/properties/shipping_option_code", "required")
    if code not in SHIPPING_OPTIONS:
        raise Refusal(400, f"Unknown shipping option code {code!r}.",
                      "/ship_with/properties/shipping_option_code")
    return str(code)


def _decimal(value: Any, pointer: str) -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, str) else Decimal("NaN")
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number <= 0:
        raise Refusal(400, "A positive number as a string is required.", pointer)
    return number


def _weight(value: Any) -> Decimal:
    if not isinstance(value, dict) or value.get("unit") not in KG_PER:
        raise Refusal(400, "weight needs value and unit (kg, g, lbs, oz).",
                      "/parcels/0/weight", "required")
    return _decimal(value.get("value"), "/parcels/0/weight/value") * KG_PER[value["unit"]]


def _dimensions(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("unit") not in CM_PER:
        raise Refusal(400, "dimensions need length, width, height and unit.",
                      "/parcels/0/dimensions")
    factor = CM_PER[value["unit"]]
    return {name: f"{_decimal(value.get(name), f'/parcels/0/dimensions/{name}') * factor:.2f}"
            for name in ("length", "width", "height")}


def v3_routes(sandbox: SendcloudSandbox) -> list[BaseRoute]:
    """The v3 routes; every answer follows v3's shapes, errors in ``errors[]``."""
    v3 = SendcloudV3(sandbox)

    def guard(request: Request) -> Response | None:
        if not authorized(sandbox, request):  # body shape inferred: v3's errors[]
            return Refusal(401, "Invalid username/password.", code="authentication_failed"
                           ).response()
        return throttled(sandbox, request)

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def announce(request: Request, *, rules: bool) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        try:
            body = await read_json(request)
        except ValueError:
            return Refusal(400, "Invalid JSON", "/").response()
        try:
            shipment = v3.announce(body, base_of(request), rules=rules)
        except Refusal as refusal:
            return refusal.response()
        return JSONResponse({"data": v3.view(shipment, base_of(request), label=True)}, 201)

    async def announce_sync(request: Request) -> Response:
        return await announce(request, rules=False)

    async def announce_rules(request: Request) -> Response:
        return await announce(request, rules=True)

    async def shipments(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        params = request.query_params
        rows = list(v3.shipments.values())
        if "external_reference_id" in params:
            rows = [s for s in rows
                    if s.request.get("external_reference_id") == params["external_reference_id"]]
        if "order_number" in params:
            rows = [s for s in rows if s.request.get("order_number") == params["order_number"]]
        if "ids" in params:
            wanted = {i.strip() for i in params["ids"].split(",")}
            rows = [s for s in rows if s.id in wanted]
        views = [v3.view(s, base_of(request)) for s in rows]
        if "tracking_number" in params:
            views = [v for v in views if any(p["tracking_number"] == params["tracking_number"]
                                             for p in v["parcels"])]
        return JSONResponse({"data": views[:100]})

    async def shipment(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        found = v3.shipments.get(request.path_params["shipment_id"])
        if found is None:
            return Refusal(404, "Not found", code="not_found").response()
        return JSONResponse({"data": v3.view(found, base_of(request))})

    async def cancel(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        try:
            status, body = v3.cancel(request.path_params["shipment_id"])
        except Refusal as refusal:
            return refusal.response()
        return JSONResponse(body, status_code=status)

    async def document(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        kind = request.path_params["doc_type"]
        if kind not in ("label", "customs-declaration", "air-waybill"):
            return Refusal(400, "Invalid document type.").response()
        record = sandbox.parcels.get(int(request.path_params["parcel_id"]))
        if record is None or kind != "label" or record.data.get("label") is None:
            return Refusal(404, "No Parcel matches the given query.", code="not_found"
                           ).response()
        paper = request.query_params.get("paper_size", "A6").upper()
        return Response(label_pdf(record.data, quadrant=0 if paper == "A4" else None),
                        media_type="application/pdf")

    async def statuses(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        seen: dict[str, str] = {}
        for status_id, message in sorted(STATUS_MESSAGES.items()):
            seen.setdefault(status_code(status_id), message)
        return JSONResponse({"data": [{"code": c, "message": m} for c, m in seen.items()]})

    async def senders(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse({"data": [v3_sender(r) for r in sandbox.config.sender_addresses]})

    async def sender(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        for row in sandbox.config.sender_addresses:
            if int(row["id"]) == int(request.path_params["sender_id"]):
                return JSONResponse({"data": v3_sender(row)})
        return Refusal(404, "Not found", code="not_found").response()

    async def metadata(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        config = sandbox.config
        return JSONResponse({"data": {"user_id": config.user_id,
                                      "integration_id": config.integration_id}})

    def v3_integration() -> dict[str, Any]:
        hook = sandbox.integration
        return {"id": hook["id"], "shop_name": hook["shop_name"], "shop_url": hook["shop_url"],
                "type": "api", "started_failing_at": None, "last_fetched_at": None,
                "created_at": hook["last_updated_at"], "updated_at": hook["last_updated_at"],
                "service_point_enabled": hook["service_point_enabled"],
                "service_point_carriers": hook["service_point_carriers"],
                "webhook_active": hook["webhook_active"], "webhook_url": hook["webhook_url"],
                "feedback_type": "none"}

    async def integrations(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse({"data": [v3_integration()]})

    async def integration(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if int(request.path_params["integration_id"]) != sandbox.integration["id"]:
            return Refusal(404, "The Integration could not be found with the search criteria "
                           "given", code="not_found").response()
        if request.method == "PATCH":
            body = await read_json(request)
            refused = sandbox.change_integration(body if isinstance(body, dict) else {},
                                                 full=False)
            if refused is not None:
                return Refusal(400, refused).response()
            return Response(status_code=204)
        return JSONResponse({"data": v3_integration()})

    return [
        Route("/api/v3/integrations", integrations, methods=["GET"]),
        Route("/api/v3/integrations/{integration_id:int}", integration,
              methods=["GET", "PATCH"]),
        Route("/api/v3/shipments", shipments, methods=["GET"]),
        Route("/api/v3/shipments/announce", announce_sync, methods=["POST"]),
        Route("/api/v3/shipments/announce-with-shipping-rules", announce_rules,
              methods=["POST"]),
        Route("/api/v3/shipments/{shipment_id}", shipment, methods=["GET"]),
        Route("/api/v3/shipments/{shipment_id}/cancel", cancel, methods=["POST"]),
        Route("/api/v3/parcels/statuses", statuses, methods=["GET"]),
        Route("/api/v3/parcels/{parcel_id:int}/documents/{doc_type}", document,
              methods=["GET"]),
        Route("/api/v3/addresses/sender-addresses", senders, methods=["GET"]),
        Route("/api/v3/addresses/sender-addresses/{sender_id:int}", sender, methods=["GET"]),
        Route("/api/v3/user/auth/metadata", metadata, methods=["GET"]),
    ]

