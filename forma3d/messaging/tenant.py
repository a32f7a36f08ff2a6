"""Messages to a tenant's entity (key: the tenant id)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from forma3d.messaging.message import Message
from forma3d.messaging.text import Text


class TenantMessage(Message):
    kind: ClassVar[str] = "tenant"

    @property
    def key(self) -> str:
        return str(self.tenant_id)


class GetTenant(TenantMessage):
    type: ClassVar[str] = "tenant.get"


class ShopifyWebhook(TenantMessage):
    """A verified Shopify delivery stored in the webhook inbox."""

    type: ClassVar[str] = "shopify.webhook"
    inbox_id: int


class FarmWebhook(TenantMessage):
    """A verified SimplyPrint delivery stored in the webhook inbox."""

    type: ClassVar[str] = "farm.webhook"
    inbox_id: int


class SendcloudWebhook(TenantMessage):
    """A verified Sendcloud delivery stored in the webhook inbox."""

    type: ClassVar[str] = "sendcloud.webhook"
    inbox_id: int


# The message that processes a stored delivery, by webhook source.
WEBHOOK_MESSAGES: dict[str, type[ShopifyWebhook | FarmWebhook | SendcloudWebhook]] = {
    "shopify": ShopifyWebhook, "simplyprint": FarmWebhook, "sendcloud": SendcloudWebhook}


class RetryDeadLetter(TenantMessage):
    """An operator sends a dead-lettered webhook delivery back to processing."""

    type: ClassVar[str] = "webhook.retry"
    inbox_id: int


class BackfillOrders(TenantMessage):
    """Fetch orders Shopify created while its webhooks did not reach us."""

    type: ClassVar[str] = "tenant.backfill"


class ReconcileFarm(TenantMessage):
    """Compare the tenant's active print jobs with the farm's queue and history."""

    type: ClassVar[str] = "tenant.reconcile"


class ReconcileShipments(TenantMessage):
    """Read the tenant's open parcels back from Sendcloud; report what its webhooks missed."""

    type: ClassVar[str] = "tenant.reconcile_shipments"


class MappingChanged(TenantMessage):
    """A product mapping was created or changed: resume orders held for its SKU."""

    type: ClassVar[str] = "mapping.changed"
    sku: str
    variant_id: str | None = None


class UpdateTenantSettings(TenantMessage):
    """An operator's change of tenant settings (names and values, checked by the tenant
    against TenantSettings as a whole); answers every setting after the change."""

    type: ClassVar[str] = "tenant.update_settings"
    changes: dict[str, Any]
    by: str | None = None

# --- orders made by API ------------------------------------------------------------------------


class OrderLineDraft(BaseModel):
    """One line of an order made by API: a SKU and how many."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Text = Field(min_length=1, max_length=255)
    quantity: int = Field(ge=1, le=10_000)
    title: Text = Field("", max_length=255)
    variant_id: Text | None = Field(None, max_length=64)
    requires_shipping: bool = Field(True, description="false: not a print (skipped)")
    properties: dict[Text, Text] = Field(default_factory=dict, max_length=50)


class AddressDraft(BaseModel):
    """Where the parcel goes (Sendcloud's destination)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Text = Field(min_length=1, max_length=200)
    company: Text | None = Field(None, max_length=200)
    address1: Text = Field(min_length=1, max_length=200, description="street and number")
    address2: Text | None = Field(None, max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    zip: Text = Field(min_length=1, max_length=20)
    province_code: Text | None = Field(None, max_length=10)
    country_code: Text = Field(pattern="^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    phone: Text | None = Field(None, max_length=40)


class OrderDraft(BaseModel):
    """A sale outside Shopify: printed, packed and shipped by Sendcloud like any order, with no
    Shopify fulfilment. `reference` is the caller's own id, unique per tenant: posting the same
    reference again answers the order it made."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    reference: Text = Field(min_length=1, max_length=100)
    name: Text | None = Field(None, max_length=100, description="order number shown to "
                              "operators (default: the reference)")
    email: Text | None = Field(None, max_length=254)
    currency: Text = Field("EUR", pattern="^[A-Z]{3}$")
    total_price: Decimal | None = Field(None, ge=0, lt=10**10, decimal_places=2)
    financial_status: Literal["paid", "authorized", "pending"] = Field(
        "paid", description="an order prints once paid (or authorized, per tenant setting)")
    shipping_address: AddressDraft
    line_items: list[OrderLineDraft] = Field(min_length=1, max_length=100)


class CreateOrder(TenantMessage):
    """Make an order by API; answers {"order_id", "created"}."""

    type: ClassVar[str] = "order.create"
    draft: OrderDraft
