"""The tenant's connections to Shopify, SimplyPrint and Sendcloud: list, connect or change
(PUT, registering our webhooks at the service), disconnect, and a live credential test.

Secrets are write-only: answers show their last four characters. A PUT changes what it names;
a field left out keeps its stored value (so rotating one secret needs only that secret).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from forma3d.handlers import connections
from forma3d.http.deps import deps, tenant_of, who
from forma3d.http.problems import Problem, validation_problem
from forma3d.http.routes.api import api
from forma3d.integrations.connections import webhook_url
from forma3d.integrations.errors import IntegrationError
from forma3d.integrations.settings import SERVICES, IntegrationSettings
from forma3d.store import integrations as store

TAG = "integrations"
NAMES = {"shopify": "Shopify", "simplyprint": "SimplyPrint", "sendcloud": "Sendcloud"}


class WebhooksOut(BaseModel):
    url: str = Field(description="where the service delivers this tenant's webhooks")
    registered: bool = Field(description="registered at the service by the last connect")
    subscriptions: list[str] = Field(default_factory=list)


class IntegrationOut(BaseModel):
    service: Literal["shopify", "simplyprint", "sendcloud"]
    connected: bool
    state: Literal["disconnected", "connected", "failing"] = Field(
        description="failing: the service refused the stored credentials on the last call "
                    "that used them (see last_error); cleared by a PUT or a passing test")
    account: str | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="non-secret settings")
    secrets: dict[str, str | None] = Field(
        default_factory=dict, description="each secret's last four characters, never more")
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_ok_at: datetime | None = None
    updated_at: datetime | None = None
    webhooks: WebhooksOut | None = None


class TestOut(BaseModel):
    service: str
    ok: bool
    message: str = Field(description="what the service answered to the live read call")


class _Change(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ShopifyIn(_Change):
    shop_domain: str | None = Field(None, min_length=1, max_length=255,
                                    description="e.g. my-farm.myshopify.com")
    access_token: str | None = Field(None, min_length=1, max_length=255,
                                     description="the custom app's Admin API access token")
    webhook_secret: str | None = Field(None, min_length=1, max_length=255,
                                       description="the app's client secret (signs webhooks)")
    api_version: str | None = Field(None, pattern=r"^\d{4}-\d{2}$")
    base_url: str | None = Field(None, description="instead of https://<shop_domain> (tests)")


class SimplyPrintIn(_Change):
    company_id: int | None = Field(None, ge=1)
    api_key: str | None = Field(None, min_length=1, max_length=255)
    webhook_secret: str | None = Field(None, min_length=1, max_length=128,
                                       description="we register it with our webhook")
    base_url: str | None = None
    files_url: str | None = None
    dispatch_mode: Literal["simplyprint_queue", "smart"] | None = None


class SendcloudIn(_Change):
    public_key: str | None = Field(None, min_length=1, max_length=255)
    secret_key: str | None = Field(None, min_length=1, max_length=255)
    webhook_secret: str | None = Field(None, max_length=255,
                                       description="the Webhook Signature Key, if set")
    api_version: Literal["v2", "v3"] | None = None
    base_url: str | None = None
    sender_address_id: int | None = Field(None, ge=1, description="the sender address to use")
    shipping_method_id: int | None = Field(None, ge=1,
                                           description="v2: the default shipping method")
    shipping_option_code: str | None = Field(None, max_length=255,
                                             description="v3: the default shipping option")
    parcel_dimensions_cm: tuple[Decimal, Decimal, Decimal] | None = None


def _service(request: Request) -> str:
    service = str(request.path_params["service"])
    if service not in SERVICES:
        raise Problem(404, f"no integration {service!r}; known: {', '.join(SERVICES)}")
    return service


def refused(error: IntegrationError) -> Problem:
    """The service's refusal, named: 422 for a permanent one, 502 when it could not answer."""
    name = NAMES.get(error.service, error.service)
    status = 502 if error.retryable else 422
    detail = f"{name} refused: {error.message}" if not error.retryable else (
        f"{name} did not answer: {error.message}")
    return Problem(status, detail, title=f"{name} refused the request"
                   if not error.retryable else f"{name} unavailable")


def _out(service: str, row: store.ConnectionRow | None, public_url: str | None,
         tenant_id: Any, subscriptions: list[str] | None = None) -> IntegrationOut:
    hooks = WebhooksOut(url=webhook_url(public_url, tenant_id, service),
                        registered=subscriptions is not None,
                        subscriptions=subscriptions or []) if public_url else None
    if row is None:
        return IntegrationOut(service=service, connected=False,  # type: ignore[arg-type]
                              state="disconnected", webhooks=hooks)
    settings = SERVICES[service].model_construct(**row.config)
    account = None
    with contextlib.suppress(AttributeError):  # a field the row lacks
        account = settings.account
    return IntegrationOut(
        service=service, connected=row.enabled,  # type: ignore[arg-type]
        state="failing" if row.last_error else "connected" if row.enabled else "disconnected",
        account=account, config=row.config, secrets=row.secrets, last_error=row.last_error,
        last_error_at=row.last_error_at, last_ok_at=row.last_ok_at, updated_at=row.updated_at,
        webhooks=hooks)


async def _rows(request: Request) -> dict[str, store.ConnectionRow]:
    return {row.service: row
            for row in await store.connections(deps(request).pool, tenant_of(request))}


@api.route("GET", "/integrations", "The tenant's connections to Shopify, SimplyPrint and "
           "Sendcloud: settings (secrets as their last four characters), state and webhooks",
           response=list[IntegrationOut], tags=(TAG,), permission="integrations.read")
async def list_integrations(request: Request) -> list[IntegrationOut]:
    rows = await _rows(request)
    return [_out(s, rows.get(s), deps(request).public_url, tenant_of(request))
            for s in SERVICES]


@api.route("GET", "/integrations/{service}", "One connection", response=IntegrationOut,
           tags=(TAG,), permission="integrations.read")
async def get_integration(request: Request) -> IntegrationOut:
    service = _service(request)
    rows = await _rows(request)
    return _out(service, rows.get(service), deps(request).public_url, tenant_of(request))


async def _put(request: Request, service: str, body: _Change) -> IntegrationOut:
    found, tenant_id = deps(request), tenant_of(request)
    try:
        settings: IntegrationSettings = await connections.merged(
            found.pool, tenant_id, service, body.model_dump(exclude_unset=True))
    except ValidationError as error:
        raise validation_problem(error) from None
    try:
        done = await connections.connect(found.pool, tenant_id, settings, found.public_url,
                                         changed_by=await who(request))
    except IntegrationError as error:
        raise refused(error) from None
    rows = await _rows(request)
    return _out(service, rows.get(service), found.public_url, tenant_id,
                done.registration.subscriptions if done.registration else None)


@api.route("PUT", "/integrations/shopify", "Connect or change Shopify (shop domain, Admin API "
           "access token, webhook secret); registers our order webhooks at the shop",
           body=ShopifyIn, response=IntegrationOut, tags=(TAG,),
           permission="integrations.write", example={
               "shop_domain": "my-farm.myshopify.com", "access_token": "shpat_...",
               "webhook_secret": "..."})
async def put_shopify(request: Request, body: ShopifyIn) -> IntegrationOut:
    return await _put(request, "shopify", body)


@api.route("PUT", "/integrations/simplyprint", "Connect or change SimplyPrint (company id, API "
           "key, webhook secret); registers our webhook with the events we read",
           body=SimplyPrintIn, response=IntegrationOut, tags=(TAG,),
           permission="integrations.write", example={
               "company_id": 1234, "api_key": "...", "webhook_secret": "..."})
async def put_simplyprint(request: Request, body: SimplyPrintIn) -> IntegrationOut:
    return await _put(request, "simplyprint", body)


@api.route("PUT", "/integrations/sendcloud", "Connect or change Sendcloud (public and secret "
           "key, sender address, default shipping method); sets the integration's webhook URL",
           body=SendcloudIn, response=IntegrationOut, tags=(TAG,),
           permission="integrations.write", example={
               "public_key": "...", "secret_key": "...", "sender_address_id": 1})
async def put_sendcloud(request: Request, body: SendcloudIn) -> IntegrationOut:
    return await _put(request, "sendcloud", body)


@api.route("DELETE", "/integrations/{service}", "Disconnect: our webhooks at the service are "
           "removed and the stored credentials deleted", response=IntegrationOut, tags=(TAG,),
           permission="integrations.write")
async def delete_integration(request: Request) -> IntegrationOut:
    service, found, tenant_id = _service(request), deps(request), tenant_of(request)
    try:
        await connections.disconnect(found.pool, tenant_id, service, found.public_url,
                                     changed_by=await who(request))
    except connections.NotConnected as error:
        raise Problem(404, str(error)) from None
    except connections.WebhooksLeft as error:
        raise Problem(502, str(error)) from None
    return _out(service, None, found.public_url, tenant_id)


@api.route("POST", "/integrations/{service}/test", "Test the stored credentials with one live "
           "read call; answers what the service said (a refusal: problem+json naming it)",
           response=TestOut, tags=(TAG,), permission="integrations.write")
async def test_integration(request: Request) -> TestOut:
    service = _service(request)
    try:
        said = await connections.test(deps(request).pool, tenant_of(request), service)
    except connections.NotConnected as error:
        raise Problem(404, str(error)) from None
    except IntegrationError as error:
        raise refused(error) from None
    return TestOut(service=service, ok=True, message=said.message)
