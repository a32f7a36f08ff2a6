"""Per-tenant integration settings: one model per service says which fields are secret; clients
are built from these models only (the store seals the secrets, see forma3d.platform.secrets)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field

from forma3d.integrations.sendcloud import SendcloudClient
from forma3d.integrations.sendcloud_shipping import (
    ApiVersion,
    ParcelShipping,
    SendcloudAccess,
    ShipmentShipping,
    Shipping,
    probe_access,
)
from forma3d.integrations.sendcloud_v3 import SendcloudV3Client
from forma3d.integrations.shopify import ShopifyClient
from forma3d.integrations.simplyprint import SimplyPrintClient


class IntegrationMissing(RuntimeError):
    """The tenant has not configured a service the flow needs; retried until it has."""


class IntegrationSettings(BaseModel):
    service: ClassVar[str]
    secret_fields: ClassVar[tuple[str, ...]]

    @property
    def account(self) -> str | None:
        """Which account is connected, in words safe to log and show (never a secret)."""
        return None


class ShopifySettings(IntegrationSettings):
    service = "shopify"
    secret_fields = ("access_token", "webhook_secret")
    shop_domain: str
    access_token: str
    webhook_secret: str
    api_version: str = "2024-07"
    base_url: str | None = None

    @property
    def account(self) -> str | None:
        return self.shop_domain

    def client(self) -> ShopifyClient:
        return ShopifyClient(self.shop_domain, self.access_token, api_version=self.api_version,
                             base_url=self.base_url)


class SimplyPrintSettings(IntegrationSettings):
    service = "simplyprint"
    secret_fields = ("api_key", "webhook_secret")
    company_id: int
    api_key: str
    webhook_secret: str
    base_url: str = "https://api.simplyprint.io"
    files_url: str = "https://files.simplyprint.io"
    # smart: our printer actors pull the best matching job (the default); simplyprint_queue:
    # jobs go to SimplyPrint's own queue with their models and tags, and SimplyPrint starts them.
    dispatch_mode: Literal["simplyprint_queue", "smart"] = "smart"

    @property
    def account(self) -> str | None:
        return f"company {self.company_id}"

    def client(self) -> SimplyPrintClient:
        return SimplyPrintClient(self.company_id, self.api_key, base_url=self.base_url,
                                 files_url=self.files_url)


class SendcloudSettings(IntegrationSettings):
    """A Sendcloud account. `api_version` is v3 for new connections: v2's create-a-parcel is
    closed to accounts opened since 13 April 2026; connections saved before this field existed
    were v2 and keep it (migration 0010). `base_url` is the panel's root; a stored ".../api/v2"
    or ".../api/v3" root still works."""

    service = "sendcloud"
    secret_fields = ("public_key", "secret_key", "webhook_secret")
    public_key: str
    secret_key: str
    webhook_secret: str | None = None  # the "Webhook Signature Key"; else secret_key signs
    api_version: ApiVersion = "v3"
    base_url: str = "https://panel.sendcloud.sc"
    shipping_method_id: int | None = None  # v2: parcel.shipment.id
    shipping_option_code: str | None = None  # v3: ship_with; None = the account's rules
    sender_address_id: int | None = None
    parcel_dimensions_cm: tuple[Decimal, Decimal, Decimal] | None = Field(default=None)

    @property
    def api_root(self) -> str:
        return re.sub(r"/api/v[23]/?$", "", self.base_url.rstrip("/"))

    def client(self) -> SendcloudClient:
        """The v2 client (parcels, labels, shipping methods)."""
        return SendcloudClient(self.public_key, self.secret_key, base_url=f"{self.api_root}/api/v2")

    def v3_client(self) -> SendcloudV3Client:
        return SendcloudV3Client(self.public_key, self.secret_key,
                                 base_url=f"{self.api_root}/api/v3")

    def shipping(self) -> Shipping:
        """The shipping interface in this account's API version."""
        if self.api_version == "v2":
            return ParcelShipping(self.client(), shipping_method_id=self.shipping_method_id,
                                  sender_address_id=self.sender_address_id)
        return ShipmentShipping(self.v3_client(), shipping_option_code=self.shipping_option_code,
                                sender_address_id=self.sender_address_id)

    async def probe(self) -> SendcloudAccess:
        """The credential test: valid keys, and whether v2 parcels are open to the account."""
        async with self.v3_client() as v3, self.client() as v2:
            return await probe_access(v3, v2)

    @property
    def signing_key(self) -> str:
        return self.webhook_secret or self.secret_key


SERVICES: dict[str, type[IntegrationSettings]] = {
    m.service: m for m in (ShopifySettings, SimplyPrintSettings, SendcloudSettings)
}
S = TypeVar("S", bound=IntegrationSettings)


