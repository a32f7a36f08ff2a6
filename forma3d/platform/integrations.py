"""Per-tenant integration settings: public config in JSON, secrets sealed (see secrets.py).

One model per service says which fields are secret; clients are built from these models only.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field

from forma3d.db.pool import Connection, Pool
from forma3d.integrations.sendcloud import SendcloudClient
from forma3d.integrations.shopify import ShopifyClient
from forma3d.integrations.simplyprint import SimplyPrintClient
from forma3d.platform.secrets import seal, unseal


class IntegrationMissing(RuntimeError):
    """The tenant has not configured a service the flow needs; retried until it has."""


class IntegrationSettings(BaseModel):
    service: ClassVar[str]
    secret_fields: ClassVar[tuple[str, ...]]


class ShopifySettings(IntegrationSettings):
    service = "shopify"
    secret_fields = ("access_token", "webhook_secret")
    shop_domain: str
    access_token: str
    webhook_secret: str
    api_version: str = "2024-07"
    base_url: str | None = None

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


class TenantSettings(BaseModel):
    """Operational choices a tenant makes (stored in tenants.settings)."""

    # Five: at a 10 % failure rate a 140-job day loses no order in 99.9 % of days (three: 87 %).
    max_print_attempts: int = Field(default=5, ge=1, le=20)
    cancel_printing_jobs: bool = True  # on order cancellation: stop prints, or let them finish
    packaging_grams: int = Field(default=150, ge=0)
    stranded_job_seconds: float = Field(default=120.0, gt=0)
    # A job PRINTING with no update for this long is checked against the farm's job history.
    stuck_job_seconds: float = Field(default=1800.0, gt=0)
    # GridFlock (custom baseplates). Off by default: it spends cluster CPU minutes on OpenSCAD and
    # creates product mappings and farm files by itself, so a shop opts in; until then a
    # GRID-CUSTOM line item is held with a reason that names this flag.
    gridflock_enabled: bool = False
    gridflock_min_mm: float = Field(default=100.0, gt=0)
    gridflock_max_mm: float = Field(default=1000.0, gt=0)
    gridflock_printer_profile: str = "bambu-a1"
    gridflock_required_tags: list[str] = Field(default_factory=list, max_length=32)


SERVICES: dict[str, type[IntegrationSettings]] = {
    m.service: m for m in (ShopifySettings, SimplyPrintSettings, SendcloudSettings)
}
S = TypeVar("S", bound=IntegrationSettings)


async def save_integration(db: Pool | Connection, tenant_id: uuid.UUID,
                           settings: IntegrationSettings) -> None:
    values = settings.model_dump(mode="json")
    secrets = {k: values.pop(k) for k in settings.secret_fields}
    await db.execute(
        """INSERT INTO integrations (tenant_id, service, config, secrets) VALUES ($1, $2, $3, $4)
           ON CONFLICT (tenant_id, service)
           DO UPDATE SET config = EXCLUDED.config, secrets = EXCLUDED.secrets,
                         updated_at = now()""",
        tenant_id, settings.service, values, seal(secrets),
    )


async def load_integration(db: Pool | Connection, tenant_id: uuid.UUID,
                           model: type[S]) -> S | None:
    row = await db.fetchrow(
        "SELECT config, secrets FROM integrations"
        " WHERE tenant_id = $1 AND service = $2 AND enabled", tenant_id, model.service)
    if row is None:
        return None
    values: dict[str, Any] = {**row["config"], **unseal(row["secrets"])}
    return model.model_validate(values)


async def tenant_settings(db: Pool | Connection, tenant_id: uuid.UUID) -> TenantSettings:
    raw = await db.fetchval("SELECT settings FROM tenants WHERE id = $1", tenant_id)
    return TenantSettings.model_validate(raw or {})
