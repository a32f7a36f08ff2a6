"""Messages to a tenant's entity (key: the tenant id)."""

from __future__ import annotations

from typing import Any, ClassVar

from forma3d.messaging.message import Message


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
