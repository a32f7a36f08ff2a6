"""Sendcloud simulator (API v2): parcels, labels, cancel semantics and signed status webhooks.

Shapes follow shared/reference/external-apis.md section 3 and sendcloud/v2_openapi.json; the
v3 shipments API (sandbox.sendcloud_v3) is served beside it on the same host, over the same
parcels. Announced parcels travel 1000 -> 1 -> 3 -> 5 -> 91 -> 11 on the simulated clock,
posting a ``parcel_status_changed`` webhook at every step; cancelled parcels stop travelling.
An account opened on or after 13 April 2026 (``account_created``) may not create v2 parcels:
Sendcloud closed that endpoint to new users (shop-onboarding.md section 5).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import random
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from forma3d.domain.shipping.states import SENDCLOUD_STATUS_MESSAGES
from forma3d.integrations.signatures import SENDCLOUD_SIGNATURE_HEADER, sendcloud_signature
from sandbox.clock import SimClock
from sandbox.control import control_routes, read_json
from sandbox.label import label_pdf
from sandbox.ratelimit import Limits, WindowLimit
from sandbox.webhooks import WebhookDispatcher

STATUS_MESSAGES = SENDCLOUD_STATUS_MESSAGES  # one table: the domain's
CANCELLING = {1999, 2001}
CANCELLED = {1998, 2000}
DELIVERED = {11, 93}
# Sendcloud: 10 retries, exponential from 5 minutes, at most 1 hour apart (simulated seconds).
SENDCLOUD_RETRY_DELAYS = [300.0, 600.0, 1200.0, 2400.0] + [3600.0] * 6
COUNTRIES: dict[str, tuple[str, str]] = {
    "NL": ("NLD", "Netherlands"),
    "BE": ("BEL", "Belgium"),
    "DE": ("DEU", "Germany"),
    "FR": ("FRA", "France"),
    "LU": ("LUX", "Luxembourg"),
    "AT": ("AUT", "Austria"),
    "ES": ("ESP", "Spain"),
    "IT": ("ITA", "Italy"),
    "GB": ("GBR", "United Kingdom"),
    "US": ("USA", "United States"),
}
DATE_FORMAT = "%d-%m-%Y %H:%M:%S"
REQUIRED_FIELDS = ("name", "address", "city", "postal_code", "country")
V2_CUTOFF = date(2026, 4, 13)
# Sendcloud's documentation of create-a-parcel; the HTTP status and envelope are inferred (v2's
# error envelope, 403 as for an account without access).
V2_CLOSED_MESSAGE = (
    "Create a parcel is now in maintenance mode and is closed to new users. Only Sendcloud "
    "accounts created before April 13th 2026 can continue to use this endpoint; use "
    "POST /api/v3/shipments/announce instead."
)


def _default_methods() -> list[dict[str, Any]]:
    def method(
        mid: int, name: str, carrier: str, max_weight: str, prices: dict[str, float]
    ) -> dict[str, Any]:
        countries = [
            {
                "id": index + 1,
                "name": COUNTRIES[iso][1],
                "iso_2": iso,
                "iso_3": COUNTRIES[iso][0],
                "price": price,
                "lead_time_hours": 24 if iso == "NL" else 48,
                "price_breakdown": [
                    {"type": "price_without_insurance", "label": "Label", "value": price}
                ],
            }
            for index, (iso, price) in enumerate(prices.items())
        ]
        return {
            "id": mid,
            "name": name,
            "carrier": carrier,
            "min_weight": "0.001",
            "max_weight": max_weight,
            "service_point_input": "none",
            "price": 0,
            "countries": countries,
        }

    return [
        method(8, "PostNL Standard 0-23kg", "postnl", "23.001", {"NL": 6.95, "BE": 9.25}),
        method(
            8020,
            "DHL For You Drop Off 0-23kg",
            "dhl",
            "23.001",
            {"NL": 5.75, "BE": 7.95, "DE": 8.95},
        ),
        method(1317, "DPD Home 0-31.5kg", "dpd", "31.501", {"NL": 7.10, "BE": 7.10, "DE": 7.45}),
        method(1319, "UPS Standard 0-70kg", "ups", "70.001", {"DE": 12.5, "FR": 13.0, "GB": 19.0}),
        {**method(8030, "DHL ServicePoint 0-23kg", "dhl", "23.001",
                  {"NL": 4.95, "BE": 6.95, "DE": 6.95}), "service_point_input": "required"},
    ]


def _default_senders() -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "company_name": "Forma3D Sandbox Farm",
            "contact_name": "Farm Operator",
            "email": "farm@example.com",
            "telephone": "+31401234567",
            "street": "Kanaaldijk",
            "house_number": "12",
            "postal_box": "",
            "postal_code": "5611 AB",
            "city": "Eindhoven",
            "country": "NL",
            "country_state": None,
            "vat_number": "NL123456789B01",
            "eori_number": "NL123456789",
            "label": "Farm",
            "brand_id": 1,
            "signature_full_name": "Farm Operator",
            "signature_initials": "FO",
        }
    ]


class SendcloudConfig(BaseModel):
    """One simulated Sendcloud account (one API integration)."""

    public_key: str = "sc_public_sandbox"
    secret_key: str = "sc_secret_sandbox"
    webhook_signature_key: str | None = None  # None: webhooks are signed with secret_key
    webhook_targets: list[str] = Field(default_factory=list)
    loss_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    retry_delays: list[float] = Field(default_factory=lambda: list(SENDCLOUD_RETRY_DELAYS))
    status_interval: float = 3600.0  # simulated seconds between carrier milestones
    journey: list[int] = Field(default_factory=lambda: [1, 3, 5, 91, 11])
    safe_per_minute: int = 1000
    unsafe_per_minute: int = 100
    unsafe_per_second: int = 15
    duplicate_external_reference: Literal["return_existing", "error"] = "return_existing"
    announcement_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    shipping_methods: list[dict[str, Any]] = Field(default_factory=_default_methods)
    sender_addresses: list[dict[str, Any]] = Field(default_factory=_default_senders)
    account_created: date = date(2025, 6, 1)  # on or after V2_CUTOFF: v2 creates are refused
    service_point_enabled: bool = True
    user_id: int = 1
    integration_id: int = 1

    @property
    def v2_parcels_allowed(self) -> bool:
        return self.account_created < V2_CUTOFF


@dataclass
class ParcelRecord:
    data: dict[str, Any]
    base_url: str
    announced_at: float | None = None
    journey: asyncio.Task[None] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _error(code: int, message: str, request: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request": request}}


def _split_address(address: str) -> tuple[str, str]:
    match = re.match(r"^(.*?)[\s,]+(\d+\s*[A-Za-z]?(?:[-/]\w+)?)$", address.strip())
    if match:
        return match.group(1).strip(), match.group(2).strip()
    return address.strip(), ""


def _kilos(value: Any) -> str:
    try:
        return f"{Decimal(str(value or '1')):.3f}"
    except InvalidOperation as exc:
        raise ValueError("weight: A valid number is required.") from exc


class SendcloudSandbox:
    """In-memory parcels; a task per announced parcel walks it through the carrier journey."""

    def __init__(self, config: SendcloudConfig, clock: SimClock, seed: int = 0) -> None:
        self.config = config
        self.clock = clock
        self.rng = random.Random(f"{seed}:sendcloud")
        self.dispatcher = WebhookDispatcher(
            "sendcloud",
            clock,
            loss_rate=config.loss_rate,
            seed=seed,
            retry_delays=config.retry_delays,
            timeout=10.0,
            connect_timeout=5.0,
        )
        self.targets = list(config.webhook_targets)
        # The account's API integration: its webhook_url (set through /integrations/{id}) is
        # where parcel webhooks go, as on Sendcloud.
        now = clock.now().isoformat()
        self.integration: dict[str, Any] = {
            "id": config.integration_id, "shop_name": "Forma3D Sandbox", "shop_url": "",
            "system": "api", "failing_since": None, "last_fetch": None,
            "last_updated_at": now, "service_point_enabled": config.service_point_enabled,
            "service_point_carriers": ["postnl", "dhl"] if config.service_point_enabled else [],
            "webhook_active": False, "webhook_url": None}
        self.parcels: dict[int, ParcelRecord] = {}
        self._ids = itertools.count(self.rng.randrange(100_000, 200_000))
        self.limits_safe = Limits(WindowLimit(config.safe_per_minute, 60.0))
        self.limits_unsafe = Limits(
            WindowLimit(config.unsafe_per_minute, 60.0), WindowLimit(config.unsafe_per_second, 1.0)
        )

    @property
    def signing_key(self) -> str:
        return self.config.webhook_signature_key or self.config.secret_key

    def _date(self) -> str:
        return self.clock.now().strftime(DATE_FORMAT)

    def method(self, method_id: int) -> dict[str, Any] | None:
        for method in self.config.shipping_methods:
            if int(method["id"]) == method_id:
                return method
        return None

    def find_external(self, reference: str) -> ParcelRecord | None:
        for record in self.parcels.values():
            if record.data.get("external_reference") == reference:
                return record
        return None

    # -- create / update ------------------------------------------------------------------

    def create(self, spec: dict[str, Any], base_url: str) -> tuple[ParcelRecord, bool]:
        """Creates (and maybe announces) a parcel; returns (record, created_now).

        ``external_reference`` is unique: a repeat returns the existing parcel (no second label)
        or, with ``duplicate_external_reference="error"``, raises.
        """
        missing = [name for name in REQUIRED_FIELDS if not spec.get(name)]
        if missing:
            raise ValueError(f"{missing[0]}: This field is required.")
        reference = spec.get("external_reference")
        if reference:
            existing = self.find_external(str(reference))
            if existing is not None:
                if self.config.duplicate_external_reference == "error":
                    raise ValueError(
                        "external_reference: Parcel with this external reference already exists."
                    )
                return existing, False
        iso = str(spec["country"]).upper()
        iso3, country_name = COUNTRIES.get(iso, (iso, iso))
        weight = _kilos(spec.get("weight"))
        street, number = _split_address(str(spec["address"]))
        house_number = str(spec.get("house_number") or number)
        if spec.get("house_number"):
            street = str(spec["address"]).strip()
        parcel_id = next(self._ids)
        now = self._date()
        data: dict[str, Any] = {
            "id": parcel_id,
            "name": spec["name"],
            "company_name": spec.get("company_name") or "",
            "contract": spec.get("contract"),
            "address": f"{spec['address']}"
            + (f" {spec['house_number']}" if spec.get("house_number") else ""),
            "address_2": spec.get("address_2") or "",
            "address_divided": {"street": street, "house_number": house_number},
            "city": spec["city"],
            "postal_code": spec["postal_code"],
            "telephone": spec.get("telephone") or "",
            "email": spec.get("email") or "",
            "country": {"iso_2": iso, "iso_3": iso3, "name": country_name},
            "country_state": spec.get("country_state"),
            "to_state": spec.get("country_state"),
            "date_created": now,
            "date_updated": now,
            "date_announced": None,
            "tracking_number": "",
            "tracking_url": "",
            "weight": weight,
            "length": spec.get("length"),
            "width": spec.get("width"),
            "height": spec.get("height"),
            "order_number": str(spec.get("order_number") or ""),
            "external_reference": str(reference) if reference else None,
            "external_order_id": str(spec.get("order_number") or ""),
            "external_shipment_id": "",
            "reference": str(spec.get("reference") or "0"),
            "status": {"id": 999, "message": STATUS_MESSAGES[999]},
            "shipment": None,
            "carrier": None,
            "is_return": bool(spec.get("is_return", False)),
            "type": "parcel",
            "colli_uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "collo_nr": 0,
            "collo_count": int(spec.get("quantity") or 1),
            "shipment_uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "awb_tracking_number": None,
            "box_number": None,
            "parcel_items": list(spec.get("parcel_items") or []),
            "to_service_point": spec.get("to_service_point"),
            "to_post_number": spec.get("to_post_number") or "",
            "total_order_value_currency": spec.get("total_order_value_currency") or "EUR",
            "total_order_value": spec.get("total_order_value"),
            "insured_value": spec.get("insured_value") or 0,
            "total_insured_value": spec.get("total_insured_value") or 0,
            "shipping_method_checkout_name": spec.get("shipping_method_checkout_name") or "",
            "customs_invoice_nr": spec.get("customs_invoice_nr") or "",
            "customs_shipment_type": spec.get("customs_shipment_type"),
            "customs_declaration": {},
            "label": None,
            "documents": [],
            "note": spec.get("note") or "",
            "data": {},
            "errors": {},
        }
        self._set_method(data, spec)
        record = ParcelRecord(data=data, base_url=base_url)
        if spec.get("request_label") or spec.get("request_label_async"):
            self._announce(record)
        self.parcels[parcel_id] = record
        self._changed(record)
        return record, True

    def _set_method(self, data: dict[str, Any], spec: dict[str, Any]) -> None:
        shipment = spec.get("shipment")
        method_id = shipment.get("id") if isinstance(shipment, dict) else None
        if method_id is None and (spec.get("apply_shipping_rules") or spec.get("request_label")):
            iso = data["country"]["iso_2"]
            for candidate in self.config.shipping_methods:
                if any(c["iso_2"] == iso for c in candidate["countries"]):
                    method_id = candidate["id"]
                    break
        if method_id is None:
            if spec.get("request_label"):
                raise ValueError(f"shipment: No shipping method available to {data['country']}.")
            return
        method = self.method(int(method_id))
        if method is None:
            raise ValueError(f"shipment: Invalid shipping method id {method_id}.")
        if Decimal(data["weight"]) > Decimal(str(method["max_weight"])):
            raise ValueError(
                f"weight: Weight {data['weight']} kg exceeds the maximum of {method['name']}."
            )
        if method.get("service_point_input") == "required" and not data.get("to_service_point"):
            raise ValueError(
                f"to_service_point: {method['name']} delivers to a service point: "
                "to_service_point is required."
            )
        data["shipment"] = {"id": int(method["id"]), "name": method["name"]}
        data["carrier"] = {"code": method["carrier"]}

    def _announce(self, record: ParcelRecord) -> None:
        data = record.data
        if data["shipment"] is None:
            raise ValueError("shipment: This field is required to request a label.")
        now = self._date()
        data["date_updated"] = now
        if self.rng.random() < self.config.announcement_failure_rate:
            data["status"] = {"id": 1002, "message": STATUS_MESSAGES[1002]}
            data["errors"] = {"non_field_errors": ["Sandbox carrier rejected the announcement"]}
            return
        carrier = data["carrier"]["code"]
        number = f"3SSBX{self.rng.randrange(10**10):010d}"
        parcel_id = data["id"]
        base = record.base_url
        data["tracking_number"] = number
        data["tracking_url"] = (
            f"https://tracking.sendcloud.sc/forward?carrier={carrier}&code={number}"
            f"&destination={data['country']['iso_2']}&lang=en&source=NL&type=parcel"
            f"&verification={data['postal_code'].replace(' ', '')}"
        )
        data["date_announced"] = now
        data["status"] = {"id": 1000, "message": STATUS_MESSAGES[1000]}
        data["label"] = {
            "normal_printer": [
                f"{base}/api/v2/labels/normal_printer/{parcel_id}?start_from={i}" for i in range(4)
            ],
            "label_printer": f"{base}/api/v2/labels/label_printer/{parcel_id}",
        }
        link = f"{base}/api/v2/parcels/{parcel_id}/documents/label"
        data["documents"] = [{"type": "label", "size": "a6", "link": link}]
        record.announced_at = self.clock.elapsed()
        record.journey = asyncio.create_task(
            self._travel(record, record.announced_at), name=f"parcel-{parcel_id}"
        )

    def update(self, spec: dict[str, Any]) -> ParcelRecord:
        """PUT /parcels: edit an unannounced parcel, or request its label."""
        record = self.parcels.get(int(spec.get("id") or 0))
        if record is None:
            raise LookupError("Not Found")
        data = record.data
        if data["status"]["id"] != 999:
            raise ValueError("non_field_errors: Parcel has already been announced.")
        for name in (
            "name",
            "company_name",
            "address",
            "address_2",
            "city",
            "postal_code",
            "telephone",
            "email",
            "order_number",
            "reference",
        ):
            if name in spec:
                data[name] = spec[name]
        if "weight" in spec:
            data["weight"] = _kilos(spec["weight"])
        if "shipment" in spec or spec.get("request_label"):
            self._set_method(data, {**spec, "shipment": spec.get("shipment", data["shipment"])})
        data["date_updated"] = self._date()
        if spec.get("request_label"):
            self._announce(record)
            self._changed(record)
        return record

    # -- status journey -------------------------------------------------------------------

    def _set_status(self, record: ParcelRecord, status_id: int) -> None:
        record.data["status"] = {"id": status_id, "message": STATUS_MESSAGES.get(status_id, "")}
        record.data["date_updated"] = self._date()
        self._changed(record)

    async def _travel(self, record: ParcelRecord, start: float) -> None:
        """Deadlines count from ``start`` (announce time), not from when the task first runs."""
        for step, status_id in enumerate(self.config.journey, start=1):
            await self.clock.sleep_until(start + step * self.config.status_interval)
            if record.data["status"]["id"] in CANCELLING | CANCELLED:
                return
            self._set_status(record, status_id)

    async def _finish_cancel(self, record: ParcelRecord, start: float) -> None:
        await self.clock.sleep_until(start + self.config.status_interval)
        self._set_status(record, 2001)
        await self.clock.sleep_until(start + 2 * self.config.status_interval)
        self._set_status(record, 2000)

    def _stop(self, record: ParcelRecord) -> None:
        if record.journey is not None and not record.journey.done():
            record.journey.cancel()
        record.journey = None

    def cancel(self, parcel_id: int) -> tuple[int, dict[str, Any]]:
        """Cancel semantics of section 3.6: 200 / 202 / 400 / 404 / 410."""
        record = self.parcels.get(parcel_id)
        if record is None:
            return 404, _error(404, "Not Found", f"api/v2/parcels/{parcel_id}/cancel")
        status_id = int(record.data["status"]["id"])
        if status_id == 1002:
            return 410, {"status": "deleted", "message": "Parcel announcement failed"}
        if status_id in CANCELLED or status_id in CANCELLING:
            return 400, {"status": "failed", "message": "Parcel has already been cancelled"}
        if status_id in DELIVERED:
            return 400, {"status": "failed", "message": "Parcel has already been delivered"}
        if (
            record.announced_at is not None
            and self.clock.elapsed() - record.announced_at > 42 * 86400
        ):
            return 400, {
                "status": "failed",
                "message": "Parcels can only be cancelled within 42 days after announcement",
            }
        if status_id == 999:
            del self.parcels[parcel_id]
            return 200, {"status": "cancelled", "message": "Parcel has been cancelled"}
        self._stop(record)
        if status_id == 1000:
            self._set_status(record, 1999)
            record.journey = asyncio.create_task(self._finish_cancel(record, self.clock.elapsed()))
            return 202, {"status": "queued", "message": "Parcel cancellation has been queued"}
        self._set_status(record, 2000)
        return 200, {"status": "cancelled", "message": "Parcel has been cancelled"}

    def _changed(self, record: ParcelRecord) -> None:
        """Records the status and posts ``parcel_status_changed`` (body as Python json.dumps)."""
        stamp = int(self.clock.timestamp() * 1000)
        status = dict(record.data["status"])
        if record.history and record.history[-1]["status"] == status:
            return
        record.history.append({"status": status, "timestamp": stamp})
        if status["id"] == 999:
            return
        payload = {
            "action": "parcel_status_changed",
            "timestamp": stamp,
            "carrier_status_change_timestamp": stamp,
            "parcel": record.data,
        }
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            SENDCLOUD_SIGNATURE_HEADER: sendcloud_signature(self.signing_key, body),
        }
        for target in self.subscribers():
            self.dispatcher.send(target, body, headers, "parcel_status_changed")

    def subscribers(self) -> list[str]:
        """Preset targets (simulator tests) and the integration's active webhook URL."""
        hook = self.integration
        active = [str(hook["webhook_url"])] if hook["webhook_active"] and hook[
            "webhook_url"] else []
        return list(dict.fromkeys([*self.targets, *active]))

    def change_integration(self, change: dict[str, Any], *, full: bool) -> str | None:
        """PUT (`full`: every field) or PATCH of the integration; the refusal's text, or None."""
        fields = ("shop_name", "shop_url", "service_point_enabled", "service_point_carriers",
                  "webhook_active", "webhook_url")
        missing = [f"{name}: This field is required." for name in fields if name not in change]
        if full and missing:
            return f"{{'settings': {missing}}}"
        merged = {**self.integration, **{k: v for k, v in change.items() if k in fields}}
        if merged["webhook_active"] and not merged["webhook_url"]:
            return "Webhook URL required when enable webhook is set to true"
        url = merged["webhook_url"]
        if url and not str(url).startswith(("http://", "https://")):
            return "webhook_url: Enter a valid URL."
        merged["last_updated_at"] = self.clock.now().isoformat()
        self.integration = merged
        return None

    async def aclose(self) -> None:
        for record in self.parcels.values():
            task = record.journey
            self._stop(record)
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.dispatcher.aclose()


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o={offset}".encode()).decode()


def _offset(cursor: str) -> int:
    text = base64.urlsafe_b64decode(cursor.encode()).decode()
    if not text.startswith("o="):
        raise ValueError("bad cursor")
    return int(text[2:])


def authorized(sandbox: SendcloudSandbox, request: Request) -> bool:
    """Basic auth with the account's public and secret key (both API versions)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return user == sandbox.config.public_key and password == sandbox.config.secret_key


def throttled(sandbox: SendcloudSandbox, request: Request) -> Response | None:
    """429 with an empty body once the account's safe or unsafe budget is spent."""
    limits = sandbox.limits_safe if request.method == "GET" else sandbox.limits_unsafe
    if not limits.take():
        return Response(b"", status_code=429)
    return None


def build_sendcloud_app(sandbox: SendcloudSandbox,
                        extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The v2 routes under ``/api/v2/``, `extra_routes` (v3), and ``/_sandbox/`` controls."""

    def api_path(request: Request) -> str:
        return request.url.path.lstrip("/")

    def guard(request: Request) -> Response | None:
        if not authorized(sandbox, request):
            return JSONResponse(
                _error(401, "Invalid username/password.", api_path(request)), status_code=401
            )
        return throttled(sandbox, request)

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def parcel_or_404(request: Request, key: str = "parcel_id") -> ParcelRecord | Response:
        record = sandbox.parcels.get(int(request.path_params[key]))
        if record is None:
            return JSONResponse(_error(404, "Not Found", api_path(request)), status_code=404)
        return record

    async def parcels(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.method == "GET":
            return list_parcels(request)
        try:
            payload = await read_json(request)
        except ValueError:
            return JSONResponse(_error(400, "Invalid JSON", api_path(request)), status_code=400)
        if request.method == "PUT":
            spec = payload.get("parcel") if isinstance(payload, dict) else None
            if not isinstance(spec, dict):
                return JSONResponse(
                    _error(400, "parcel: This field is required.", api_path(request)), 400
                )
            try:
                record = sandbox.update(spec)
            except LookupError:
                return JSONResponse(_error(404, "Not Found", api_path(request)), status_code=404)
            except ValueError as exc:
                return JSONResponse(_error(400, str(exc), api_path(request)), status_code=400)
            return JSONResponse({"parcel": record.data})
        if not sandbox.config.v2_parcels_allowed:
            return JSONResponse(_error(403, V2_CLOSED_MESSAGE, api_path(request)), 403)
        if isinstance(payload, dict) and isinstance(payload.get("parcels"), list):
            created: list[dict[str, Any]] = []
            failed: list[dict[str, Any]] = []
            for spec in payload["parcels"]:
                try:
                    record, _ = sandbox.create(spec, base_of(request))
                    created.append(record.data)
                except ValueError as exc:
                    name, _, message = str(exc).partition(": ")
                    failed.append({"parcel": spec, "errors": {name: [message]}})
            if failed:
                return JSONResponse({"failed_parcels": failed, "parcels": created})
            return JSONResponse({"parcels": created})
        spec = payload.get("parcel") if isinstance(payload, dict) else None
        if not isinstance(spec, dict):
            return JSONResponse(
                _error(400, "parcel: This field is required.", api_path(request)), 400
            )
        try:
            record, _ = sandbox.create(spec, base_of(request))
        except ValueError as exc:
            return JSONResponse(_error(400, str(exc), api_path(request)), status_code=400)
        return JSONResponse({"parcel": record.data})

    def list_parcels(request: Request) -> Response:
        params = request.query_params
        rows = [r.data for r in sorted(sandbox.parcels.values(), key=lambda r: r.data["id"])]
        for name in ("tracking_number", "order_number", "external_reference"):
            if name in params:
                rows = [p for p in rows if str(p.get(name) or "") == params[name]]
        if "parcel_status" in params:
            rows = [p for p in rows if str(p["status"]["id"]) == params["parcel_status"]]
        if "ids" in params:
            wanted = {int(i) for i in params["ids"].split(",") if i.strip()}
            rows = [p for p in rows if p["id"] in wanted]
        for name, key in (("updated_after", "date_updated"), ("announced_after", "date_announced")):
            if name in params:
                try:
                    after = datetime.fromisoformat(params[name].replace("Z", "+00:00"))
                except ValueError:
                    message = f"{name}: Invalid date"
                    return JSONResponse(_error(400, message, api_path(request)), 400)
                rows = [
                    p
                    for p in rows
                    if p.get(key)
                    and datetime.strptime(p[key], DATE_FORMAT).replace(tzinfo=after.tzinfo) > after
                ]
        try:
            offset = _offset(params["cursor"]) if "cursor" in params else 0
            limit = max(1, min(500, int(params.get("limit", "100"))))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return JSONResponse(_error(404, "Invalid cursor", api_path(request)), status_code=404)
        page = rows[offset : offset + limit]
        base = f"{base_of(request)}{request.url.path}"
        keep = {k: v for k, v in params.items() if k != "cursor"}

        def url(position: int) -> str:
            return f"{base}?{urlencode({**keep, 'cursor': _cursor(position)})}"

        return JSONResponse(
            {
                "next": url(offset + limit) if offset + limit < len(rows) else None,
                "previous": url(max(0, offset - limit)) if offset > 0 else None,
                "parcels": page,
            }
        )

    async def parcel(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        record = parcel_or_404(request)
        if isinstance(record, Response):
            return record
        return JSONResponse({"parcel": record.data})

    async def cancel(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        status, body = sandbox.cancel(int(request.path_params["parcel_id"]))
        return JSONResponse(body, status_code=status)

    async def statuses(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        rows = [{"id": k, "message": v} for k, v in sorted(STATUS_MESSAGES.items())]
        return JSONResponse(rows)

    def labelled(request: Request) -> ParcelRecord | Response:
        record = parcel_or_404(request)
        if isinstance(record, Response):
            return record
        if record.data.get("label") is None:
            return JSONResponse(
                _error(404, "No label has been created for this parcel", api_path(request)), 404
            )
        return record

    async def label_links(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        record = labelled(request)
        if isinstance(record, Response):
            return record
        return JSONResponse({"label": record.data["label"], "customs_declaration": {}})

    async def label_printer(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        record = labelled(request)
        if isinstance(record, Response):
            return record
        return Response(label_pdf(record.data), media_type="application/pdf")

    async def normal_printer(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        record = labelled(request)
        if isinstance(record, Response):
            return record
        try:
            quadrant = int(request.query_params.get("start_from", "0"))
        except ValueError:
            quadrant = -1
        if quadrant not in range(4):
            return JSONResponse({"message": "start_from must be 0, 1, 2 or 3"}, status_code=400)
        return Response(label_pdf(record.data, quadrant=quadrant), media_type="application/pdf")

    async def document(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if request.path_params["doc_type"] != "label":
            return JSONResponse(_error(404, "Not Found", api_path(request)), status_code=404)
        record = labelled(request)
        if isinstance(record, Response):
            return record
        paper = request.query_params.get("paper_size", "A6").upper()
        pdf = label_pdf(record.data, quadrant=0 if paper == "A4" else None)
        return Response(pdf, media_type="application/pdf")

    async def shipping_methods(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        to_country = request.query_params.get("to_country")
        rows = [
            m
            for m in sandbox.config.shipping_methods
            if to_country is None or any(c["iso_2"] == to_country.upper() for c in m["countries"])
        ]
        return JSONResponse({"next": None, "previous": None, "shipping_methods": rows})

    async def shipping_method(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        method = sandbox.method(int(request.path_params["method_id"]))
        if method is None:
            return JSONResponse(_error(404, "Not Found", api_path(request)), status_code=404)
        return JSONResponse({"shipping_method": method})

    async def senders(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse({"sender_addresses": sandbox.config.sender_addresses})

    async def sender(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        for row in sandbox.config.sender_addresses:
            if int(row["id"]) == int(request.path_params["sender_id"]):
                return JSONResponse({"sender_address": row})
        return JSONResponse(_error(404, "Not Found", api_path(request)), status_code=404)

    async def tracking(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        number = request.path_params["number"]
        for record in sandbox.parcels.values():
            data = record.data
            if data["tracking_number"] and data["tracking_number"] == number:
                return JSONResponse(
                    {
                        "parcel_id": data["id"],
                        "carrier_code": (data["carrier"] or {}).get("code"),
                        "created_at": data["date_created"],
                        "carrier_tracking_url": data["tracking_url"],
                        "sendcloud_tracking_url": data["tracking_url"],
                        "is_return": data["is_return"],
                        "is_to_service_point": data["to_service_point"] is not None,
                        "is_mail_box": False,
                        "expected_delivery_date": None,
                        "statuses": [
                            {
                                "carrier_update_timestamp": entry["timestamp"],
                                "parcel_status_history_id": index + 1,
                                "parent_status": entry["status"]["message"]
                                .lower()
                                .replace(" ", "-"),
                                "carrier_code": str(entry["status"]["id"]),
                                "carrier_message": entry["status"]["message"],
                            }
                            for index, entry in enumerate(record.history)
                        ],
                    }
                )
        return Response(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
            b"<Message>The specified key does not exist.</Message></Error>",
            status_code=404,
            media_type="application/xml",
        )

    async def sandbox_parcels(request: Request) -> Response:
        return JSONResponse(
            {
                "parcels": [
                    {**r.data, "_history": r.history}
                    for r in sorted(sandbox.parcels.values(), key=lambda r: r.data["id"])
                ]
            }
        )

    async def sandbox_status(request: Request) -> Response:
        """Forces a status (exceptions, delays) for operator training."""
        record = parcel_or_404(request)
        if isinstance(record, Response):
            return record
        body = await read_json(request)
        status_id = int(body["status"])
        if body.get("stop", True):
            sandbox._stop(record)
        sandbox._set_status(record, status_id)
        return JSONResponse({"parcel": record.data})

    async def sandbox_rate_limit(request: Request) -> Response:
        sandbox.limits_safe.reset()
        sandbox.limits_unsafe.reset()
        return JSONResponse({"reset": True})

    async def integrations(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return JSONResponse([sandbox.integration])

    async def integration(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if int(request.path_params["integration_id"]) != sandbox.integration["id"]:
            return JSONResponse(_error(404, "No Integration matches the given query.",
                                       api_path(request)), status_code=404)
        if request.method in ("PUT", "PATCH"):
            body = await read_json(request)
            refused = sandbox.change_integration(body if isinstance(body, dict) else {},
                                                 full=request.method == "PUT")
            if refused is not None:
                return JSONResponse(_error(400, refused, api_path(request)), status_code=400)
            return JSONResponse({k: v for k, v in sandbox.integration.items()
                                 if k not in ("id", "system", "failing_since", "last_fetch")})
        return JSONResponse(sandbox.integration)

    routes = [
        Route("/api/v2/parcels", parcels, methods=["GET", "POST", "PUT"]),
        Route("/api/v2/parcels/statuses", statuses, methods=["GET"]),
        Route("/api/v2/parcels/{parcel_id:int}", parcel, methods=["GET"]),
        Route("/api/v2/parcels/{parcel_id:int}/cancel", cancel, methods=["POST"]),
        Route("/api/v2/parcels/{parcel_id:int}/documents/{doc_type}", document, methods=["GET"]),
        Route("/api/v2/labels/{parcel_id:int}", label_links, methods=["GET"]),
        Route("/api/v2/labels/label_printer/{parcel_id:int}", label_printer, methods=["GET"]),
        Route("/api/v2/labels/normal_printer/{parcel_id:int}", normal_printer, methods=["GET"]),
        Route("/api/v2/shipping_methods", shipping_methods, methods=["GET"]),
        Route("/api/v2/shipping_methods/{method_id:int}", shipping_method, methods=["GET"]),
        Route("/api/v2/user/addresses/sender", senders, methods=["GET"]),
        Route("/api/v2/user/addresses/sender/{sender_id:int}", sender, methods=["GET"]),
        Route("/api/v2/tracking/{number}", tracking, methods=["GET"]),
        Route("/api/v2/integrations", integrations, methods=["GET"]),
        Route("/api/v2/integrations/{integration_id:int}", integration,
              methods=["GET", "PUT", "PATCH"]),
        *extra_routes,
        Route("/_sandbox/parcels", sandbox_parcels, methods=["GET"]),
        Route("/_sandbox/parcels/{parcel_id:int}/status", sandbox_status, methods=["POST"]),
        Route("/_sandbox/rate_limit/reset", sandbox_rate_limit, methods=["POST"]),
        *control_routes(sandbox.clock, sandbox.dispatcher, sandbox.subscribers),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = sandbox
    return app
