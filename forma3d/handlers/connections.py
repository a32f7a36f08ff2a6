"""A tenant's connections to Shopify, SimplyPrint and Sendcloud, as the API and the CLI make
them: save the credentials, register our webhooks at the service (when the deployment's
public URL is known), test them with one live call, disconnect.

Connections belong to the platform, not to an entity (docs/architecture.md): these run in the
caller's process, and the change reaches every process through the change notice
(`store.integrations`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from forma3d.db.pool import Pool
from forma3d.integrations import connections
from forma3d.integrations.connections import Probe, Registration, webhook_url
from forma3d.integrations.errors import IntegrationError
from forma3d.integrations.settings import SERVICES, IntegrationSettings
from forma3d.store import integrations as store


class UnknownService(LookupError):
    pass


class NotConnected(LookupError):
    pass


@dataclass(frozen=True)
class Connected:
    settings: IntegrationSettings
    registration: Registration | None  # None: no public URL, nothing registered


def service_model(service: str) -> type[IntegrationSettings]:
    model = SERVICES.get(service)
    if model is None:
        raise UnknownService(f"no integration {service!r}; known: {', '.join(SERVICES)}")
    return model


async def merged(pool: Pool, tenant_id: uuid.UUID, service: str,
                 changes: dict[str, Any]) -> IntegrationSettings:
    """The stored settings with `changes` over them, validated (ValidationError naming the
    fields otherwise): a secret left out of a change keeps its stored value."""
    model = service_model(service)
    stored = await store.load_any(pool, tenant_id, service)
    values = stored.model_dump() if stored is not None else {}
    values.update(changes)
    return model.model_validate(values)


async def connect(pool: Pool, tenant_id: uuid.UUID, settings: IntegrationSettings,
                  public_url: str | None, *, changed_by: str | None = None) -> Connected:
    """Register our webhooks at the service (idempotent), then save: a refusal by the service
    (IntegrationError) leaves the stored connection as it was."""
    registration = None
    if public_url:
        url = webhook_url(public_url, tenant_id, settings.service)
        registration = await connections.register_webhooks(settings, url)
    await store.save_integration(pool, tenant_id, settings, changed_by=changed_by)
    return Connected(settings, registration)


async def disconnect(pool: Pool, tenant_id: uuid.UUID, service: str, public_url: str | None,
                     *, changed_by: str | None = None) -> None:
    """Remove our webhooks at the service (best effort: credentials that no longer work must not
    keep a shop connected), then the connection."""
    service_model(service)
    settings = await store.load_any(pool, tenant_id, service)
    if settings is None:
        raise NotConnected(f"{service} is not connected")
    if public_url:
        try:
            await connections.remove_webhooks(
                settings, webhook_url(public_url, tenant_id, service))
        except IntegrationError as error:
            await store.remove_integration(pool, tenant_id, service, changed_by=changed_by)
            raise WebhooksLeft(f"{service} is disconnected, but our webhooks could not be "
                               f"removed there: {error}") from error
    await store.remove_integration(pool, tenant_id, service, changed_by=changed_by)


class WebhooksLeft(RuntimeError):
    """Disconnected here, but the service kept our webhooks (they will be refused, 401)."""


async def test(pool: Pool, tenant_id: uuid.UUID, service: str) -> Probe:
    """One live read call with the stored credentials; a refusal is noted on the connection
    and raised (IntegrationError), success clears the note."""
    service_model(service)
    settings = await store.load_any(pool, tenant_id, service)
    if settings is None:
        raise NotConnected(f"{service} is not connected")
    try:
        said = await connections.probe(settings)
    except IntegrationError as error:
        await store.note_failure(pool, tenant_id, error)
        raise
    await store.note_ok(pool, tenant_id, service)
    return said
