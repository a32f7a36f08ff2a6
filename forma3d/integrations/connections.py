"""Connecting a tenant's services: the live credential test, and our webhook subscriptions at
each service, registered idempotently (a reconnect finds its own subscriptions by address and
does not add more) and removed on disconnect.

- Shopify: a REST webhook subscription per topic in SHOPIFY_TOPICS.
- SimplyPrint: one `webhooks/Create` webhook with the events we read and our webhook secret.
- Sendcloud: the API integration's `webhook_url` (v3 `PATCH /integrations/{id}`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from forma3d.integrations.errors import UnexpectedResponseError
from forma3d.integrations.sendcloud_v3 import SendcloudV3Client
from forma3d.integrations.settings import (
    IntegrationSettings,
    SendcloudSettings,
    ShopifySettings,
    SimplyPrintSettings,
)
from forma3d.integrations.simplyprint import WEBHOOK_EVENTS

SHOPIFY_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled",
                  "refunds/create")
SIMPLYPRINT_WEBHOOK_NAME = "Forma3D"


def webhook_url(base: str, tenant_id: uuid.UUID | str, source: str) -> str:
    """Where a service delivers a tenant's webhooks: the product's public address scheme
    (README, "Webhook URLs")."""
    return f"{base.rstrip('/')}/webhooks/{tenant_id}/{source}"


@dataclass(frozen=True)
class Probe:
    """What the service said to one live read call made with the credentials."""

    service: str
    message: str


@dataclass(frozen=True)
class Registration:
    """Our webhook subscriptions at a service after connecting: where, and for what."""

    url: str
    subscriptions: list[str]


async def probe(settings: IntegrationSettings) -> Probe:
    """One live read call with the credentials; raises the client's typed error on refusal."""
    if isinstance(settings, ShopifySettings):
        async with settings.client() as shopify:
            shop = await shopify.get_shop()
        return Probe("shopify", f"shop {shop.get('name') or '?'} "
                                f"({shop.get('myshopify_domain') or settings.shop_domain})")
    if isinstance(settings, SimplyPrintSettings):
        async with settings.client() as farm:
            said = await farm.test_connection()
        return Probe("simplyprint", said or f"company {settings.company_id}: key accepted")
    if isinstance(settings, SendcloudSettings):
        access = await settings.probe()
        opened = "open" if access.v2_parcels else "closed"
        return Probe("sendcloud", f"keys accepted (integration {access.integration_id}; "
                                  f"v2 parcels {opened} to this account)")
    raise TypeError(f"no probe for {type(settings).__name__}")


async def register_webhooks(settings: IntegrationSettings, url: str) -> Registration:
    if isinstance(settings, ShopifySettings):
        async with settings.client() as shopify:
            have = {hook.topic for hook in await shopify.list_webhooks(address=url)
                    if hook.address == url}
            for topic in SHOPIFY_TOPICS:
                if topic not in have:
                    await shopify.create_webhook(topic, url)
        return Registration(url, list(SHOPIFY_TOPICS))
    if isinstance(settings, SimplyPrintSettings):
        async with settings.client() as farm:
            ours = [hook for hook in await farm.list_webhooks() if hook.get("url") == url]
            keep = ours[0].get("id") if ours else None
            for extra in ours[1:]:
                await farm.delete_webhook(int(extra["id"]))
            await farm.create_webhook(
                name=SIMPLYPRINT_WEBHOOK_NAME, url=url, events=WEBHOOK_EVENTS,
                secret=settings.webhook_secret,
                webhook_id=int(keep) if isinstance(keep, int) else None)
        return Registration(url, list(WEBHOOK_EVENTS))
    if isinstance(settings, SendcloudSettings):
        async with settings.v3_client() as sendcloud:
            integration = await _integration_id(sendcloud)
            await sendcloud.set_webhook(integration, url)
        return Registration(url, [f"integration {integration}: parcel status changes"])
    raise TypeError(f"no webhook registration for {type(settings).__name__}")


async def remove_webhooks(settings: IntegrationSettings, url: str) -> None:
    if isinstance(settings, ShopifySettings):
        async with settings.client() as shopify:
            for hook in await shopify.list_webhooks(address=url):
                if hook.address == url:
                    await shopify.delete_webhook(hook.id)
    elif isinstance(settings, SimplyPrintSettings):
        async with settings.client() as farm:
            for found in await farm.list_webhooks():
                if found.get("url") == url:
                    await farm.delete_webhook(int(found["id"]))
    elif isinstance(settings, SendcloudSettings):
        async with settings.v3_client() as sendcloud:
            integration = await _integration_id(sendcloud)
            current = await sendcloud.get_integration(integration)
            if current.get("webhook_url") == url:
                await sendcloud.set_webhook(integration, None)


async def _integration_id(sendcloud: SendcloudV3Client) -> int:
    """The API integration these keys belong to (the one whose webhook we set)."""
    found = (await sendcloud.auth_metadata()).get("integration_id")
    if not isinstance(found, int):
        raise UnexpectedResponseError("sendcloud", "the keys name no API integration")
    return found
