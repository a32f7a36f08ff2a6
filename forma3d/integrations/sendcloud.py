"""Sendcloud API v2 client: parcels with labels, lookup, label PDFs, shipping methods, cancel.

Every announced label costs money and Sendcloud has no test mode, so creating a parcel is
idempotent by `external_reference` (unique per account): after an ambiguous failure, or when
Sendcloud refuses a create, we look the reference up before creating again.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import httpx
from pydantic import Field

from forma3d.integrations.errors import (
    RejectedError,
    TransientError,
    UnexpectedResponseError,
)
from forma3d.integrations.http import DEFAULT_TIMEOUT, ApiModel, BaseClient, Params, flatten_errors
from forma3d.integrations.retry import RetryPolicy, Sleep

DEFAULT_BASE_URL = "https://panel.sendcloud.sc/api/v2"
PARTNER_HEADER = "Sendcloud-Partner-Id"
VERBOSE_CARRIER = {"errors": "verbose-carrier"}


class ParcelStatus(ApiModel):
    id: int
    message: str = ""


class Parcel(ApiModel):
    """A v2 parcel. With errors=verbose-carrier, `errors` holds carrier complaints about a parcel
    that was created anyway (check it before treating the label as usable)."""

    id: int
    status: ParcelStatus | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    external_reference: str | None = None
    order_number: str | None = None
    carrier: dict[str, Any] | None = None
    shipment: dict[str, Any] | None = None
    label: dict[str, Any] | None = None
    errors: Any = None

    @property
    def status_id(self) -> int | None:
        return self.status.id if self.status else None

    @property
    def carrier_code(self) -> str | None:
        code = (self.carrier or {}).get("code")
        return code if isinstance(code, str) else None

    @property
    def shipping_method_id(self) -> int | None:
        method = (self.shipment or {}).get("id")
        return method if isinstance(method, int) else None

    @property
    def label_printer_url(self) -> str | None:
        url = (self.label or {}).get("label_printer")
        return url if isinstance(url, str) else None

    @property
    def error_text(self) -> str | None:
        """Carrier/validation errors as one line, or None when there are none."""
        return flatten_errors(self.errors) if self.errors else None


class ShippingMethod(ApiModel):
    id: int
    name: str = ""
    carrier: str | None = None
    min_weight: Decimal | None = None
    max_weight: Decimal | None = None
    service_point_input: str | None = None
    countries: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class ParcelRequest:
    """What we send to create a parcel; `external_reference` is mandatory (our idempotency key)."""

    external_reference: str
    name: str
    address: str
    city: str
    postal_code: str
    country: str
    house_number: str | None = None
    address_2: str | None = None
    company_name: str | None = None
    telephone: str | None = None
    email: str | None = None
    country_state: str | None = None
    order_number: str | None = None
    shipping_method_id: int | None = None
    weight: Decimal | str | None = None
    total_order_value: Decimal | str | None = None
    total_order_value_currency: str | None = None
    sender_address: int | None = None
    to_service_point: int | None = None
    request_label: bool = True
    apply_shipping_rules: bool | None = None
    parcel_items: Sequence[Mapping[str, Any]] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "external_reference": self.external_reference,
            "name": self.name,
            "address": self.address,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": self.country,
            "request_label": self.request_label,
        }
        optional: dict[str, Any] = {
            "house_number": self.house_number,
            "address_2": self.address_2,
            "company_name": self.company_name,
            "telephone": self.telephone,
            "email": self.email,
            "country_state": self.country_state,
            "order_number": self.order_number,
            "shipment": {"id": self.shipping_method_id} if self.shipping_method_id else None,
            "weight": _decimal_text(self.weight, 3),
            "total_order_value": _decimal_text(self.total_order_value, 2),
            "total_order_value_currency": self.total_order_value_currency,
            "sender_address": self.sender_address,
            "to_service_point": self.to_service_point,
            "apply_shipping_rules": self.apply_shipping_rules,
            "parcel_items": [dict(item) for item in self.parcel_items] or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        body.update(self.extra)
        return body


class CancelOutcome(StrEnum):
    """What POST /parcels/{id}/cancel did, one value per documented status code."""

    CANCELLED = "cancelled"  # 200: cancelled, or deleted if it was never announced
    QUEUED = "queued"  # 202: Sendcloud watches it (up to 14 days) and cancels if unused
    REJECTED = "rejected"  # 400: already cancelled, delivered, or announced >42 days ago
    NOT_FOUND = "not_found"  # 404: no such parcel (e.g. an unannounced one already deleted)
    GONE = "gone"  # 410: announcement had failed (status 1002); nothing left to cancel


_CANCEL_OUTCOMES = {
    200: CancelOutcome.CANCELLED,
    202: CancelOutcome.QUEUED,
    400: CancelOutcome.REJECTED,
    404: CancelOutcome.NOT_FOUND,
    410: CancelOutcome.GONE,
}


@dataclass(frozen=True)
class CancelResult:
    outcome: CancelOutcome
    message: str
    http_status: int
    raw: Any = None

    @property
    def is_final(self) -> bool:
        """True when no label will be charged/shipped any more (REJECTED needs a look)."""
        return self.outcome in (
            CancelOutcome.CANCELLED,
            CancelOutcome.NOT_FOUND,
            CancelOutcome.GONE,
        )


def _decimal_text(value: Decimal | str | None, places: int) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return f"{value:.{places}f}"


class SendcloudAuth(BaseClient):
    """What both Sendcloud APIs share: Basic auth with the key pair, an optional partner id,
    and a `base_url` that may be the sandbox (`default_base_url` per version)."""

    service: ClassVar[str] = "sendcloud"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        *,
        base_url: str | None = None,
        partner_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if partner_id:
            headers[PARTNER_HEADER] = partner_id
        super().__init__(
            (base_url or self.default_base_url).rstrip("/") + "/",
            headers=headers,
            auth=(public_key, secret_key),
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            rng=rng,
            transport=transport,
        )


class SendcloudClient(SendcloudAuth):
    """Sendcloud v2 parcels."""

    # -- parcels

    async def create_parcel(self, parcel: ParcelRequest, *, lookup_first: bool = False) -> Parcel:
        """Create (and with request_label, announce) a parcel exactly once per external_reference.

        Ambiguous failures are retried only after looking the reference up; a 400 answer also
        triggers a lookup, because a parcel we created before a crash makes Sendcloud refuse the
        duplicate reference. `lookup_first` forces the lookup on the first attempt.
        """
        body = {"parcel": parcel.to_api()}
        reference = parcel.external_reference
        look = lookup_first

        async def attempt() -> Parcel:
            nonlocal look
            if look:
                existing = await self._lookup_once(reference)
                if existing is not None:
                    return existing
            try:
                response = await self.send_once(
                    "POST", "parcels", params=VERBOSE_CARRIER, json=body
                )
            except TransientError as err:
                look = look or err.ambiguous
                raise
            except RejectedError:
                existing = await self._lookup_once(reference)
                if existing is not None:
                    return existing
                raise
            return self._created(self.json_object(response))

        return await self.retrying(attempt)

    def _created(self, answer: dict[str, Any]) -> Parcel:
        if answer.get("parcel") is not None:
            return self.parse(Parcel, answer["parcel"])
        failed = answer.get("failed_parcels") or []
        if failed:
            errors = failed[0].get("errors") if isinstance(failed[0], dict) else failed[0]
            raise RejectedError(
                self.service, f"parcel refused: {flatten_errors(errors)}", status=200, body=answer
            )
        parcels = answer.get("parcels") or []
        if len(parcels) == 1:
            return self.parse(Parcel, parcels[0])
        raise UnexpectedResponseError(self.service, "create answered without a parcel", body=answer)

    async def get_parcel(self, parcel_id: int) -> Parcel:
        response = await self.request("GET", f"parcels/{parcel_id}", params=VERBOSE_CARRIER)
        return self.parse(Parcel, self.json_object(response).get("parcel"))

    async def find_parcel_by_external_reference(self, reference: str) -> Parcel | None:
        """The parcel carrying our idempotency key, or None if Sendcloud has none."""
        return await self.retrying(lambda: self._lookup_once(reference))

    async def _lookup_once(self, reference: str) -> Parcel | None:
        params: Params = {"external_reference": reference}
        answer = self.json_object(await self.send_once("GET", "parcels", params=params))
        for raw in answer.get("parcels") or []:
            parcel = self.parse(Parcel, raw)
            if parcel.external_reference == reference:
                return parcel
        return None

    async def cancel_parcel(self, parcel_id: int) -> CancelResult:
        """Cancel an announced parcel or delete an unannounced one; each documented answer is a
        CancelOutcome, other failures raise as usual (429/5xx retried first)."""
        response = await self.request(
            "POST", f"parcels/{parcel_id}/cancel", ok_statuses=(400, 404, 410)
        )
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        outcome = _CANCEL_OUTCOMES.get(response.status_code)
        if outcome is None:  # another 2xx: treat as the documented 200
            outcome = CancelOutcome.CANCELLED
        message = self.error_message(response, body) if body else outcome.value
        return CancelResult(outcome, message, response.status_code, body)

    # -- labels

    async def get_label_pdf(self, parcel_id: int, *, start_from: int | None = None) -> bytes:
        """The label as PDF: A6 for a label printer, or with `start_from` (0-3) an A4 page with
        the label in that quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right)."""
        if start_from is None:
            url, params = f"labels/label_printer/{parcel_id}", None
        else:
            if start_from not in (0, 1, 2, 3):
                raise ValueError("start_from is the A4 quadrant: 0, 1, 2 or 3")
            url, params = f"labels/normal_printer/{parcel_id}", {"start_from": start_from}
        response = await self.request(
            "GET", url, params=params, headers={"Accept": "application/pdf"}
        )
        if not response.content.startswith(b"%PDF"):
            raise UnexpectedResponseError(
                self.service,
                f"label is not a PDF ({response.headers.get('Content-Type')})",
                status=response.status_code,
            )
        return response.content

    # -- shipping methods

    async def list_shipping_methods(
        self,
        *,
        sender_address: int | str | None = None,
        to_country: str | None = None,
        to_postal_code: str | None = None,
        from_postal_code: str | None = None,
        is_return: bool | None = None,
        service_point_id: int | None = None,
    ) -> list[ShippingMethod]:
        """Methods available for the route; a method's `id` goes into ParcelRequest."""
        params: Params = {
            "sender_address": sender_address,
            "to_country": to_country,
            "to_postal_code": to_postal_code,
            "from_postal_code": from_postal_code,
            "is_return": is_return,
            "service_point_id": service_point_id,
        }
        answer = self.json_object(await self.request("GET", "shipping_methods", params=params))
        return [self.parse(ShippingMethod, m) for m in answer.get("shipping_methods") or []]
