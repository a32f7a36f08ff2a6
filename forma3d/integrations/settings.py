"""Per-tenant integration settings: one model per service says which fields are secret; clients
are built from these models only (the store seals the secrets, see forma3d.platform.secrets)."""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

from pydantic import BaseModel

from forma3d.integrations.sendcloud import SendcloudClient
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
    dispatch_mode: Literal["simplyprint_queue", "smart"] = "simplyprint_queue"

    @property
    def account(self) -> str | None:
        return f"company {self.company_id}"

    def client(self) -> SimplyPrintClient:
        return SimplyPrintClient(self.company_id, self.api_key, base_url=self.base_url,
                                 files_url=self.files_url)


class SendcloudSettings(IntegrationSettings):
    service = "sendcloud"
    secret_fields = ("public_key", "secret_key", "webhook_secret")
    public_key: str
    secret_key: str
    webhook_secret: str | None = None  # the "Webhook Signature Key"; else secret_key signs
    base_url: str = "https://panel.sendcloud.sc/api/v2"
    shipping_method_id: int | None = None
    sender_address_id: int | None = None

    def client(self) -> SendcloudClient:
        return SendcloudClient(self.public_key, self.secret_key, base_url=self.base_url)

    @property
    def signing_key(self) -> str:
        return self.webhook_secret or self.secret_key


SERVICES: dict[str, type[IntegrationSettings]] = {
    m.service: m for m in (ShopifySettings, SimplyPrintSettings, SendcloudSettings)
}
S = TypeVar("S", bound=IntegrationSettings)


