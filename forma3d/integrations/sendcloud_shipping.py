"""The shipping interface the order flow uses, and its two Sendcloud implementations.

`Shipping` is one protocol: create a shipment with its label for an order (idempotent by our
reference), cancel it, read its status back. `ParcelShipping` speaks v2 parcels (accounts opened
before 13 April 2026 may keep them); `ShipmentShipping` speaks v3 shipments. Both translate the
carrier's status vocabulary once, here, into our `ShipmentStatus` (v2 numeric ids, v3 codes),
and both raise the typed errors of forma3d.integrations.errors under the one retry policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Literal, Protocol, Self, TypeVar

from forma3d.domain.shipping.address import bare_state_code, iso_state_code, needs_state
from forma3d.domain.shipping.states import (
    ShipmentStatus,
    status_from_sendcloud,
    status_from_sendcloud_code,
)
from forma3d.integrations.errors import AuthenticationError, PermanentError, RejectedError
from forma3d.integrations.sendcloud import (
    CancelResult,
    ParcelRequest,
    SendcloudAuth,
    SendcloudClient,
)
from forma3d.integrations.sendcloud_v3 import (
    Address,
    Dimensions,
    SendcloudV3Client,
    ShipmentRequest,
    V3Shipment,
)

ApiVersion = Literal["v2", "v3"]
V2_CLOSED = "closed to new users"  # Sendcloud's words for v2 parcel creation since 2026-04-13


class ApiVersionRefused(PermanentError):
    """The account may not use this API version (v2 parcels for an account opened since
    13 April 2026): the tenant's connection must switch to v3."""

    action = "switch the tenant's Sendcloud connection to api_version v3, then retry shipping"


@dataclass(frozen=True)
class Destination:
    """Where the order goes, in Shopify's terms (province code as Shopify gives it)."""

    name: str
    street: str
    city: str
    postal_code: str
    country: str
    house_number: str | None = None
    address_2: str | None = None
    company: str | None = None
    province_code: str | None = None
    phone: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ShipmentOrder:
    """What the order flow asks to ship; `reference` is the idempotency key at Sendcloud."""

    reference: str
    destination: Destination
    weight_kg: str
    order_number: str | None = None
    total_price: Decimal | str | None = None
    currency: str | None = None
    service_point_id: str | None = None
    dimensions_cm: tuple[Decimal, Decimal, Decimal] | None = None
    # The checkout's method (a tenant's rule); None: the integration's default method.
    shipping_method_id: int | None = None  # v2
    shipping_option_code: str | None = None  # v3
    post_number: str | None = None  # v2 `to_post_number` (post lockers: DHL DE)


@dataclass(frozen=True)
class CarrierShipment:
    """A created shipment with its label, in our vocabulary plus the carrier's raw status."""

    api_version: ApiVersion
    parcel_id: int
    shipment_id: str | None
    status: ShipmentStatus
    tracking_number: str | None
    tracking_url: str | None
    carrier: str | None
    label: bytes
    status_id: int | None = None
    status_code: str | None = None


@dataclass(frozen=True)
class CarrierStatus:
    status: ShipmentStatus | None
    tracking_number: str | None
    tracking_url: str | None
    status_id: int | None = None
    status_code: str | None = None
    message: str | None = None


class Shipping(Protocol):
    """One Sendcloud account, in whichever API version the tenant uses."""

    api_version: ApiVersion

    async def create(self, order: ShipmentOrder) -> CarrierShipment: ...

    async def cancel(self, parcel_id: int, shipment_id: str | None) -> CancelResult: ...

    async def status(self, parcel_id: int, shipment_id: str | None) -> CarrierStatus: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


C = TypeVar("C", bound=SendcloudAuth)


class _Session(Generic[C]):
    """A shipping implementation owns its client: closing one closes the other."""

    client: C

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()


class ParcelShipping(_Session[SendcloudClient]):
    """v2: `POST /parcels` with `request_label`, then the label PDF."""

    api_version: ApiVersion = "v2"

    def __init__(self, client: SendcloudClient, *, shipping_method_id: int | None = None,
                 sender_address_id: int | None = None) -> None:
        self.client = client
        self.shipping_method_id = shipping_method_id
        self.sender_address_id = sender_address_id

    async def create(self, order: ShipmentOrder) -> CarrierShipment:
        to = order.destination
        dims = order.dimensions_cm
        extra: dict[str, str] = {} if dims is None else {
            "length": f"{dims[0]:.2f}", "width": f"{dims[1]:.2f}", "height": f"{dims[2]:.2f}"}
        if order.service_point_id and order.post_number:
            extra["to_post_number"] = order.post_number
        request = ParcelRequest(
            external_reference=order.reference, name=to.name, company_name=to.company,
            address=to.street, house_number=to.house_number, address_2=to.address_2,
            city=to.city, postal_code=to.postal_code, country=to.country.upper(),
            country_state=bare_state_code(to.country, to.province_code)
            if needs_state(to.country) else None,
            telephone=to.phone, email=to.email, order_number=order.order_number,
            weight=order.weight_kg,
            shipping_method_id=order.shipping_method_id or self.shipping_method_id,
            sender_address=self.sender_address_id, total_order_value=order.total_price,
            total_order_value_currency=order.currency, request_label=True,
            to_service_point=_point_number(order.service_point_id),
            extra=extra)
        try:
            parcel = await self.client.create_parcel(request)
        except (AuthenticationError, RejectedError) as error:
            if V2_CLOSED in error.message:
                raise ApiVersionRefused(error.service, error.message, status=error.status,
                                        body=error.body) from error
            raise
        if parcel.status_id == 1002:
            raise RejectedError("sendcloud", "announcement failed: "
                                + (parcel.error_text or "the carrier refused the parcel"),
                                status=200, body=parcel.raw)
        label = await self.client.get_label_pdf(parcel.id)
        return CarrierShipment(
            "v2", parcel.id, None,
            status_from_sendcloud(parcel.status_id or 0) or ShipmentStatus.LABEL_CREATED,
            parcel.tracking_number, parcel.tracking_url, parcel.carrier_code, label,
            status_id=parcel.status_id)

    async def cancel(self, parcel_id: int, shipment_id: str | None) -> CancelResult:
        return await self.client.cancel_parcel(parcel_id)

    async def status(self, parcel_id: int, shipment_id: str | None) -> CarrierStatus:
        parcel = await self.client.get_parcel(parcel_id)
        return CarrierStatus(status_from_sendcloud(parcel.status_id or 0),
                             parcel.tracking_number, parcel.tracking_url,
                             status_id=parcel.status_id,
                             message=parcel.status.message if parcel.status else None)


class ShipmentShipping(_Session[SendcloudV3Client]):
    """v3: `POST /shipments/announce` (or with the account's shipping rules when no option code
    is configured), label from the answer or `GET /parcels/{id}/documents/label`."""

    api_version: ApiVersion = "v3"

    def __init__(self, client: SendcloudV3Client, *, shipping_option_code: str | None = None,
                 sender_address_id: int | None = None) -> None:
        self.client = client
        self.shipping_option_code = shipping_option_code
        self.sender_address_id = sender_address_id

    async def _from_address(self, option_code: str | None) -> Address | None:
        """The sender address the option code ships from; None lets Sendcloud's defaults
        choose."""
        if option_code is None:
            return None
        rows = await self.client.sender_addresses()
        chosen = next((r for r in rows if r.get("id") == self.sender_address_id), None) \
            if self.sender_address_id is not None else (rows[0] if rows else None)
        if chosen is None:
            raise RejectedError("sendcloud", "no sender address "
                                f"{self.sender_address_id or ''} in the Sendcloud account")
        state = chosen.get("state_province_code")
        return Address(
            name=str(chosen.get("name") or chosen.get("company_name") or ""),
            company_name=chosen.get("company_name"),
            address_line_1=str(chosen.get("address_line_1") or ""),
            house_number=chosen.get("house_number"),
            address_line_2=chosen.get("address_line_2") or None,
            postal_code=str(chosen.get("postal_code") or ""), city=str(chosen.get("city") or ""),
            country_code=str(chosen.get("country_code") or ""),
            state_province_code=state if state and state != "null" else None,
            email=chosen.get("email"), phone_number=chosen.get("phone_number"))

    async def create(self, order: ShipmentOrder) -> CarrierShipment:
        to = order.destination
        try:
            state = iso_state_code(to.country, to.province_code) if needs_state(to.country) \
                else None
        except ValueError as error:
            raise RejectedError("sendcloud", str(error)) from error
        dims = order.dimensions_cm
        option = order.shipping_option_code or self.shipping_option_code
        request = ShipmentRequest(
            external_reference_id=order.reference,
            to_address=Address(
                name=to.name, company_name=to.company, address_line_1=to.street,
                house_number=to.house_number, address_line_2=to.address_2,
                postal_code=to.postal_code, city=to.city, country_code=to.country,
                state_province_code=state, email=to.email, phone_number=to.phone),
            weight_kg=order.weight_kg, from_address=await self._from_address(option),
            shipping_option_code=option,
            dimensions=None if dims is None else Dimensions(*dims),
            to_service_point_id=order.service_point_id, order_number=order.order_number,
            total_order_price=order.total_price, currency=order.currency)
        shipment = await self.client.announce_shipment(request)
        parcel = shipment.parcel
        assert parcel is not None  # announce_shipment checks it
        label = parcel.label_bytes or await self.client.get_label_pdf(parcel.id)
        return CarrierShipment(
            "v3", parcel.id, shipment.id,
            status_from_sendcloud_code(parcel.status_code) or ShipmentStatus.LABEL_CREATED,
            parcel.tracking_number, parcel.tracking_url, _carrier(shipment), label,
            status_code=parcel.status_code)

    async def cancel(self, parcel_id: int, shipment_id: str | None) -> CancelResult:
        if shipment_id is None:
            raise RejectedError("sendcloud", f"parcel {parcel_id} has no v3 shipment id")
        return await self.client.cancel_shipment(shipment_id)

    async def status(self, parcel_id: int, shipment_id: str | None) -> CarrierStatus:
        if shipment_id is None:
            raise RejectedError("sendcloud", f"parcel {parcel_id} has no v3 shipment id")
        shipment = await self.client.get_shipment(shipment_id)
        parcel = next((p for p in shipment.parcels if p.id == parcel_id), shipment.parcel)
        if parcel is None:
            return CarrierStatus(None, None, None)
        return CarrierStatus(status_from_sendcloud_code(parcel.status_code),
                             parcel.tracking_number, parcel.tracking_url,
                             status_code=parcel.status_code,
                             message=parcel.status.message if parcel.status else None)


def _point_number(point: str | None) -> int | None:
    """v2's `to_service_point` is an integer id; anything else is refused before sending."""
    if not point:
        return None
    if not point.isdigit():
        raise RejectedError("sendcloud", f"service point {point!r} is not a Sendcloud v2 id")
    return int(point)


def _carrier(shipment: V3Shipment) -> str | None:
    return shipment.carrier_code


@dataclass(frozen=True)
class SendcloudAccess:
    """What a Sendcloud account accepts, for the credential test: v3 always (for valid keys);
    v2 parcel creation only for accounts opened before 13 April 2026."""

    integration_id: int | None
    v2_parcels: bool

    @property
    def recommended(self) -> ApiVersion:
        return "v3"  # v2 is in maintenance mode; keep it only where a tenant already uses it


async def probe_access(v3: SendcloudV3Client, v2: SendcloudClient) -> SendcloudAccess:
    """Credential test: the keys against v3's `/user/auth/metadata` (AuthenticationError when
    they are wrong), then an empty v2 parcel, which creates nothing: a validation refusal means
    v2 is open to the account, Sendcloud's "closed to new users" means it is not (inferred: that
    the closure is checked before validation)."""
    metadata = await v3.auth_metadata()
    integration = metadata.get("integration_id")
    try:
        await v2.send_once("POST", "parcels", json={"parcel": {}})
    except (AuthenticationError, RejectedError) as error:
        if V2_CLOSED in error.message:
            return SendcloudAccess(integration if isinstance(integration, int) else None, False)
        if isinstance(error, AuthenticationError):
            raise
    return SendcloudAccess(integration if isinstance(integration, int) else None, True)
