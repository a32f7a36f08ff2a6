"""Outgoing webhooks: a tenant's subscriptions (URL, event types, on/off) with a secret shown
once, their delivery history, and redelivery.

A target is checked when it is set and again at every delivery: https to public addresses
only; loopback for development, and private addresses only where the tenant allows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response

from forma3d.config import settings
from forma3d.domain.events import registered_events
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Column, Condition, Filter, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes
from forma3d.http.routing import json_response
from forma3d.integrations.outgoing_webhooks import TargetRefused, check_target
from forma3d.store import webhooks

TAG = "webhook-subscriptions"
ALL_EVENTS = "*"
READ, WRITE = "webhook_subscriptions.read", "webhook_subscriptions.write"


def event_names() -> list[str]:
    return sorted({spec.name for spec in registered_events()})


def _event_types(values: list[str]) -> list[str]:
    known = set(event_names())
    unknown = [v for v in values if v != ALL_EVENTS and v not in known]
    if unknown:
        raise ValueError(f"unknown event types {unknown}; GET /webhook-event-types lists them")
    return list(dict.fromkeys(values))


Url = Annotated[str, Field(min_length=8, max_length=2048)]
EventTypes = Annotated[list[Annotated[str, Field(max_length=100)]],
                       Field(min_length=1, max_length=200)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"url": "https://hooks.example.com/forma3d", "event_types": ["order.created",
                                                                     "order.shipped"]}]})
    url: Url
    event_types: EventTypes = Field(description='catalog event types, or ["*"] for all')
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True

    _types = field_validator("event_types")(_event_types)


class SubscriptionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    event_types: EventTypes | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _types(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _event_types(values)


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    consecutive_failures: int
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="whsec_...: shown only now; verifies webhook-signature")


class DeliveryOut(BaseModel):
    id: Annotated[uuid.UUID, Column("d.delivery_id")]
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    redelivery_of: uuid.UUID | None
    created_at: datetime
    payload: dict[str, Any]


SUBSCRIPTIONS = QuerySpec.of(SubscriptionOut, "webhook_subscriptions w",
                             default_sort="created_at:desc")
DELIVERIES = QuerySpec.of(DeliveryOut, "webhook_deliveries d", default_sort="created_at:desc")


async def _check_url(request: Request, url: str) -> None:
    """422 naming `url` when the target is not https, or reaches an address the tenant may not."""
    policy = await webhooks.target_policy(deps(request).pool, tenant_of(request),
                                          settings().webhook_allow_loopback)
    try:
        await check_target(url, policy)
    except TargetRefused as refused:
        raise Problem(422, f"the webhook URL is refused: {refused}",
                      errors=[{"field": "url", "message": str(refused)}]) from None


def _subscription_id(request: Request) -> uuid.UUID:
    return parse_id(request.path_params["subscription_id"], "webhook subscription")


async def of_subscription(request: Request) -> Filter:
    """The subscription's own deliveries; 404 when it is not this tenant's."""
    subscription_id = _subscription_id(request)
    if await webhooks.get_subscription(deps(request).pool, tenant_of(request),
                                       subscription_id) is None:
        raise Problem(404, f"webhook subscription {subscription_id} not found")
    return Condition("subscription_id", "eq", subscription_id)


list_routes("/webhook-subscriptions", SUBSCRIPTIONS, name="webhook_subscriptions",
            item=SubscriptionOut, tag=TAG, permission=READ)
list_routes("/webhook-subscriptions/{subscription_id}/deliveries", DELIVERIES,
            name="webhook_deliveries", item=DeliveryOut, tag=TAG, narrow=of_subscription,
            permission=READ)


@api.route("GET", "/webhook-event-types", "Every event type a subscription can ask for",
           response=list[str], tags=(TAG,), permission=READ)
async def list_event_types(request: Request) -> list[str]:
    return event_names()


@api.route("POST", "/webhook-subscriptions", "Subscribe a URL to events; answers the signing "
           "secret once", body=SubscriptionIn, response=SubscriptionCreated, status=201,
           tags=(TAG,), permission=WRITE)
async def create_subscription(request: Request, body: SubscriptionIn) -> dict[str, Any]:
    await _check_url(request, body.url)
    created, secret = await webhooks.create_subscription(
        deps(request).pool, tenant_of(request), body.url, body.event_types,
        description=body.description, enabled=body.enabled)
    return {**created.__dict__, "secret": secret}


@api.route("GET", "/webhook-subscriptions/{subscription_id}", "Get a webhook subscription",
           response=SubscriptionOut, tags=(TAG,), permission=READ)
async def get_subscription(request: Request) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, SUBSCRIPTIONS, tenant_of(request),
                               _subscription_id(request), "webhook subscription")


@api.route("PATCH", "/webhook-subscriptions/{subscription_id}", "Change a subscription's URL, "
           "event types or description, or switch it on or off (on again: its waiting "
           "deliveries go out)", body=SubscriptionPatch, response=SubscriptionOut,
           tags=(TAG,), permission=WRITE)
async def patch_subscription(request: Request, body: SubscriptionPatch) -> dict[str, Any]:
    tenant_id, subscription_id = tenant_of(request), _subscription_id(request)
    pool = deps(request).pool
    current = await webhooks.get_subscription(pool, tenant_id, subscription_id)
    if current is None:
        raise Problem(404, f"webhook subscription {subscription_id} not found")
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "enabled"):
        if name in changes and changes[name] is None:
            raise Problem(422, f"{name} may be left out, but not null",
                          errors=[{"field": name, "message": "may not be null"}])
    if "url" in changes or changes.get("enabled") is True:
        await _check_url(request, changes.get("url") or current.url)
    updated = await webhooks.update_subscription(pool, tenant_id, subscription_id, changes)
    if updated is None:
        raise Problem(404, f"webhook subscription {subscription_id} not found")
    return updated.__dict__


@api.route("DELETE", "/webhook-subscriptions/{subscription_id}", "Delete a subscription and "
           "its delivery history", status=204, tags=(TAG,), permission=WRITE)
async def delete_subscription(request: Request) -> Response:
    subscription_id = _subscription_id(request)
    if not await webhooks.delete_subscription(deps(request).pool, tenant_of(request),
                                              subscription_id):
        raise Problem(404, f"webhook subscription {subscription_id} not found")
    return Response(status_code=204)


@api.route("POST", "/webhook-subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
           "Send a delivery again (same webhook-id, after the subject's waiting deliveries)",
           response=DeliveryOut, status=202, tags=(TAG,), permission=WRITE)
async def redeliver(request: Request) -> Response:
    tenant_id, subscription_id = tenant_of(request), _subscription_id(request)
    delivery_id = parse_id(request.path_params["delivery_id"], "delivery")
    pool = deps(request).pool
    found = await webhooks.redeliver(pool, tenant_id, subscription_id, delivery_id)
    if found is None:
        raise Problem(404, f"delivery {delivery_id} of webhook subscription {subscription_id} "
                      "not found")
    async with pool.acquire() as conn:
        row = await fetch_one(conn, DELIVERIES, tenant_id, found["delivery_id"], "delivery")
    return json_response(DeliveryOut.model_validate(row).model_dump(mode="json"), 202)
