"""Sendcloud Public REST API 3.0 client: shipments announced synchronously with their label.

v2's create-a-parcel is closed to accounts opened since 13 April 2026; those ship through
`POST /api/v3/shipments/announce`. Announcing buys a label, so a create is idempotent by
`external_reference_id` (unique per account: a repeat answers 409): after an ambiguous failure,
or a 409, we look the reference up (`GET /shipments?external_reference_id=`) before creating
again. Errors come as `{"errors": [{status, code, title, detail, source}]}` (JSON:API style);
they map to the same typed errors as every client (forma3d.integrations.errors).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import httpx
from pydantic import Field

from forma3d.integrations.errors import (
    NotFoundError,
    RejectedError,
    TransientError,
    UnexpectedResponseError,
)
from forma3d.integrations.http import ApiModel, Params
from forma3d.integrations.sendcloud import CancelOutcome, CancelResult, SendcloudAuth

DEFAULT_BASE_URL = "https://panel.sendcloud.sc/api/v3"
ANNOUNCEMENT_FAILED = "ANNOUNCEMENT_FAILED"


class V3Status(ApiModel):
    code: str | None = None
    message: str = ""


class V3Parcel(ApiModel):
    id: int
    status: V3Status | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    label_file: str | None = None  # base64, present for a one-parcel synchronous announcement
    documents: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def status_code(self) -> str | None:
        return self.status.code if self.status else None

    @property
    def label_bytes(self) -> bytes | None:
        if not self.label_file:
            return None
        try:
            return base64.b64decode(self.label_file, validate=True)
        except (binascii.Error, ValueError):
            return None


class V3Shipment(ApiModel):
    """A v3 shipment: our order's delivery, with one parcel for us (we never ship multicollo)."""

    id: str
    external_reference_id: str | None = None
    order_number: str | None = None
    ship_with: dict[str, Any] | None = None
    to_service_point: dict[str, Any] | None = None
    to_address: dict[str, Any] | None = None
    parcels: list[V3Parcel] = Field(default_factory=list)
    errors: list[dict[str, Any]] | None = None

    @property
    def parcel(self) -> V3Parcel | None:
        return self.parcels[0] if self.parcels else None

    @property
    def carrier_code(self) -> str | None:
        code = ((self.ship_with or {}).get("properties") or {}).get("shipping_option_code")
        return code.split(":", 1)[0] if isinstance(code, str) and code else None

    @property
    def error_text(self) -> str | None:
        return error_text(self.errors) if self.errors else None


@dataclass(frozen=True)
class Address:
    """A v3 Address object; `state_province_code` is ISO 3166-2 ("US-NY")."""

    name: str
    address_line_1: str
    postal_code: str
    city: str
    country_code: str
    house_number: str | None = None
    address_line_2: str | None = None
    company_name: str | None = None
    state_province_code: str | None = None
    email: str | None = None
    phone_number: str | None = None

    def to_api(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items() if v not in (None, "")}
        body["country_code"] = self.country_code.upper()
        return body


@dataclass(frozen=True)
class Dimensions:
    """Parcel size; Sendcloud wants all three at once, as decimal strings with a unit."""

    length: Decimal
    width: Decimal
    height: Decimal
    unit: str = "cm"


@dataclass(frozen=True)
class ShipmentRequest:
    """What we send to announce a shipment; `external_reference_id` is our idempotency key.

    Without `shipping_option_code` (and `from_address`) the account's shipping rules and
    defaults choose them (`/shipments/announce-with-shipping-rules`).
    """

    external_reference_id: str
    to_address: Address
    weight_kg: Decimal | str
    from_address: Address | None = None
    shipping_option_code: str | None = None
    contract_id: int | None = None
    dimensions: Dimensions | None = None
    to_service_point_id: str | None = None
    order_number: str | None = None
    total_order_price: Decimal | str | None = None
    currency: str | None = None
    parcel_items: Sequence[Mapping[str, Any]] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def with_rules(self) -> bool:
        return self.shipping_option_code is None or self.from_address is None

    def to_api(self) -> dict[str, Any]:
        parcel: dict[str, Any] = {"weight": {"value": _text(self.weight_kg, 3), "unit": "kg"}}
        if self.dimensions is not None:
            d = self.dimensions
            parcel["dimensions"] = {"length": _text(d.length, 2), "width": _text(d.width, 2),
                                    "height": _text(d.height, 2), "unit": d.unit}
        if self.parcel_items:
            parcel["parcel_items"] = [dict(item) for item in self.parcel_items]
        body: dict[str, Any] = {
            "external_reference_id": self.external_reference_id,
            "to_address": self.to_address.to_api(),
            "parcels": [parcel],
            "label_details": {"mime_type": "application/pdf", "dpi": 72},
        }
        if self.from_address is not None:
            body["from_address"] = self.from_address.to_api()
        if self.shipping_option_code is not None:
            properties: dict[str, Any] = {"shipping_option_code": self.shipping_option_code}
            if self.contract_id is not None:
                properties["contract_id"] = self.contract_id
            body["ship_with"] = {"type": "shipping_option_code", "properties": properties}
        if self.with_rules:
            body["apply_shipping_defaults"] = True
            body["apply_shipping_rules"] = True
        if self.to_service_point_id is not None:
            body["to_service_point"] = {"id": str(self.to_service_point_id)}
        if self.order_number:
            body["order_number"] = self.order_number
        if self.total_order_price is not None and self.currency:
            body["total_order_price"] = {"value": _text(self.total_order_price, 2),
                                         "currency": self.currency}
        body.update(self.extra)
        return body


def _text(value: Decimal | str, places: int) -> str:
    return value if isinstance(value, str) else f"{Decimal(value):.{places}f}"


def error_text(errors: Any) -> str:
    """`errors[]` as one readable line: "detail (pointer)", joined by "; "."""
    if not isinstance(errors, list):
        return str(errors)
    parts = []
    for item in errors:
        if not isinstance(item, Mapping):
            parts.append(str(item))
            continue
        text = str(item.get("detail") or item.get("title") or item.get("code") or "error")
        source = item.get("source")
        pointer = source.get("pointer") if isinstance(source, Mapping) else None
        parts.append(f"{text} ({pointer})" if pointer else text)
    return "; ".join(parts)


class SendcloudV3Client(SendcloudAuth):
    """Sendcloud v3 shipments."""

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            return error_text(body["errors"])
        return super().error_message(response, body)

    # -- shipments

    async def announce_shipment(self, request: ShipmentRequest, *,
                                lookup_first: bool = False) -> V3Shipment:
        """Create and announce a shipment with its label, exactly once per reference.

        A 201 whose parcel failed announcement raises RejectedError with the carrier's reason
        (the shipment exists; a new attempt needs a new reference). Ambiguous failures and 409
        look the reference up before anything is created again.
        """
        path = ("shipments/announce-with-shipping-rules" if request.with_rules
                else "shipments/announce")
        body = request.to_api()
        reference = request.external_reference_id
        look = lookup_first

        async def attempt() -> V3Shipment:
            nonlocal look
            if look:
                existing = await self._lookup_once(reference)
                if existing is not None:
                    return self._announced(existing)
            try:
                response = await self.send_once("POST", path, json=body)
            except TransientError as err:
                look = look or err.ambiguous
                raise
            except RejectedError as err:
                if err.status != 409:
                    raise
                existing = await self._lookup_once(reference)
                if existing is None:
                    raise
                return self._announced(existing)
            return self._announced(self._shipment(self.json_object(response)))

        return await self.retrying(attempt)

    def _announced(self, shipment: V3Shipment) -> V3Shipment:
        parcel = shipment.parcel
        if parcel is None:
            raise UnexpectedResponseError(self.service, "shipment answered without a parcel",
                                          body=shipment.raw)
        if parcel.status_code == ANNOUNCEMENT_FAILED:
            reason = (shipment.error_text or (parcel.status.message if parcel.status else "")
                      or "no reason given")
            raise RejectedError(self.service, f"announcement failed: {reason}", status=201,
                                body=shipment.raw)
        return shipment

    def _shipment(self, answer: dict[str, Any]) -> V3Shipment:
        return self.parse(V3Shipment, answer.get("data"))

    async def get_shipment(self, shipment_id: str) -> V3Shipment:
        response = await self.request("GET", f"shipments/{shipment_id}")
        return self._shipment(self.json_object(response))

    async def find_shipment_by_external_reference(self, reference: str) -> V3Shipment | None:
        return await self.retrying(lambda: self._lookup_once(reference))

    async def _lookup_once(self, reference: str) -> V3Shipment | None:
        params: Params = {"external_reference_id": reference}
        answer = self.json_object(await self.send_once("GET", "shipments", params=params))
        for raw in answer.get("data") or []:
            shipment = self.parse(V3Shipment, raw)
            if shipment.external_reference_id == reference:
                return shipment
        return None

    async def cancel_shipment(self, shipment_id: str) -> CancelResult:
        """Cancel an announced shipment: 200 cancelled, 202 queued (watched 14 days), 404 not
        found, 409 rejected (already cancelled, or announced more than 42 days ago)."""
        response = await self.request("POST", f"shipments/{shipment_id}/cancel",
                                      ok_statuses=(404, 409))
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        outcome = {200: CancelOutcome.CANCELLED, 202: CancelOutcome.QUEUED,
                   404: CancelOutcome.NOT_FOUND, 409: CancelOutcome.REJECTED,
                   }.get(response.status_code, CancelOutcome.CANCELLED)
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and data.get("message"):
            message = str(data["message"])
        elif body:
            message = self.error_message(response, body)
        else:
            message = outcome.value
        return CancelResult(outcome, message, response.status_code, body)

    # -- documents, account

    async def get_label_pdf(self, parcel_id: int) -> bytes:
        response = await self.request("GET", f"parcels/{parcel_id}/documents/label",
                                      headers={"Accept": "application/pdf"})
        if not response.content.startswith(b"%PDF"):
            raise UnexpectedResponseError(
                self.service, f"label is not a PDF ({response.headers.get('Content-Type')})",
                status=response.status_code)
        return response.content

    async def sender_addresses(self) -> list[dict[str, Any]]:
        answer = self.json_object(await self.request("GET", "addresses/sender-addresses"))
        rows = answer.get("data") or []
        return [row for row in rows if isinstance(row, dict)]

    async def auth_metadata(self) -> dict[str, Any]:
        """`{user_id, integration_id}` of these credentials: the cheap credential test."""
        data = self.json_object(await self.request("GET", "user/auth/metadata")).get("data")
        if not isinstance(data, dict):
            raise UnexpectedResponseError(self.service, "auth metadata without data", body=data)
        return data

    # -- the API integration's webhook (connecting an account)

    async def get_integration(self, integration_id: int) -> dict[str, Any]:
        for row in self.json_object(await self.request("GET", "integrations")).get("data") or []:
            if isinstance(row, dict) and row.get("id") == integration_id:
                return row
        raise NotFoundError(self.service, f"integration {integration_id} is not in the account")

    async def set_webhook(self, integration_id: int, url: str | None) -> None:
        """Point the integration's webhook at `url`, or switch it off (None)."""
        body = ({"webhook_active": True, "webhook_url": url} if url
                else {"webhook_active": False, "webhook_url": ""})
        await self.request("PATCH", f"integrations/{integration_id}", json=body)
