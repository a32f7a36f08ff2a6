"""Inbound webhooks: verify, check, store raw under a unique delivery key, answer, tell the tenant.

A delivery is checked against every constraint its processing will meet (the payload models
that the tenant entity processes it with), so a 200 is never given for something we cannot use:
the sender does not redeliver after a 200. The inbox row and the tenant's outbox message are one
transaction (shared, under load, with the deliveries of the same few milliseconds: group commit),
and the answer waits for that commit, so an acknowledged webhook is never lost; a replay inserts
nothing and tells no one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forma3d.config import settings as config
from forma3d.domain.bounded import UnsafeValue
from forma3d.domain.orders.shopify_order import (
    ORDER_TOPICS,
    REFUND_TOPICS,
    ShopifyOrder,
    ShopifyRefund,
)
from forma3d.domain.tenants import TenantSettings
from forma3d.http.deps import deps, parse_id
from forma3d.http.problems import Problem
from forma3d.http.routing import parse_json, read_body
from forma3d.integrations import signatures
from forma3d.integrations.settings import (
    IntegrationSettings,
    SendcloudSettings,
    ShopifySettings,
    SimplyPrintSettings,
)
from forma3d.integrations.webhooks import FarmWebhookPayload, SendcloudWebhookPayload
from forma3d.messaging.tenant import WEBHOOK_MESSAGES
from forma3d.platform import metrics
from forma3d.store import inbox
from forma3d.store.tenants import tenant_settings

ACCEPTED = b'{"status":"accepted"}'
DUPLICATE = b'{"status":"duplicate"}'


@dataclass(frozen=True)
class Delivery:
    key: str
    topic: str


def _checked(model: type[BaseModel], body: bytes, what: str) -> Any:
    """The body validated by `model` in one pass over the bytes (pydantic's bounded parser:
    nesting, number size and invalid Unicode are refused as malformed JSON, 400); every field
    that does not fit is named in one 422."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors()
        malformed = next((e for e in problems if e["type"] == "json_invalid"), None)
        if malformed is not None:
            raise Problem(400, f"malformed JSON: {malformed['ctx'].get('error', '')}") from None
        if any(e["type"] == "model_type" and not e["loc"] for e in problems):
            raise Problem(400, "the webhook body must be a JSON object") from None
        raise Problem(422, what, errors=[
            {"field": _field(e), "message": e["msg"]} for e in problems]) from None


def _field(error: Any) -> str:
    """The dotted path of a failed field, down into free-form objects checked as a whole."""
    where = ".".join(map(str, error["loc"]))
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, UnsafeValue) and cause.path:
        where = f"{where}.{cause.path}" if where else cause.path
    return where or "(body)"


def _object(body: bytes) -> None:
    """A body we store without processing must still be a JSON object (bounded parser)."""
    value = parse_json(body, "webhook body")
    if not isinstance(value, dict):
        raise Problem(400, "the webhook body must be a JSON object")


def _shopify(request: Request, body: bytes, settings: Any) -> Delivery:
    if not signatures.verify_shopify(settings.webhook_secret, body,
                                     request.headers.get(signatures.SHOPIFY_HMAC_HEADER)):
        raise Problem(401, "X-Shopify-Hmac-Sha256 does not match the body")
    topic = request.headers.get("x-shopify-topic")
    key = request.headers.get("x-shopify-event-id") or request.headers.get("x-shopify-webhook-id")
    if not topic or not key:
        raise Problem(400, "X-Shopify-Topic and X-Shopify-Webhook-Id are required")
    if topic in ORDER_TOPICS:
        _checked(ShopifyOrder, body, "not a valid Shopify order")
    elif topic in REFUND_TOPICS:
        _checked(ShopifyRefund, body, "not a valid Shopify refund")
    else:
        _object(body)
    return Delivery(f"{topic}:{key}", topic)


def _simplyprint(request: Request, body: bytes, settings: Any) -> Delivery:
    if not signatures.verify_simplyprint(settings.webhook_secret, request.headers):
        raise Problem(401, "X-SP-Secret (or X-SP-Token) does not match")
    payload: FarmWebhookPayload = _checked(FarmWebhookPayload, body,
                                           "not a valid SimplyPrint webhook")
    return Delivery(f"{payload.event}:{payload.subject}:{payload.timestamp}", payload.event)


def _sendcloud(request: Request, body: bytes, settings: Any) -> Delivery:
    if not signatures.verify_sendcloud(settings.signing_key, body,
                                       request.headers.get(signatures.SENDCLOUD_SIGNATURE_HEADER)):
        raise Problem(401, "Sendcloud-Signature does not match the body")
    payload: SendcloudWebhookPayload = _checked(SendcloudWebhookPayload, body,
                                                "not a valid Sendcloud webhook")
    parcel = payload.parcel
    status = parcel.status.id if parcel and parcel.status else None
    return Delivery(f"{payload.action}:{parcel.id if parcel else None}:{status}:"
                    f"{payload.timestamp}", payload.action)


SOURCES: dict[str, tuple[type[IntegrationSettings],
                         Callable[[Request, bytes, Any], Delivery]]] = {
    "shopify": (ShopifySettings, _shopify),
    "simplyprint": (SimplyPrintSettings, _simplyprint),
    "sendcloud": (SendcloudSettings, _sendcloud),
}


async def _settings(request: Request, tenant_id: uuid.UUID, source: str) -> Any:
    """The tenant's settings from this process's cache, dropped as a change commits."""
    found = deps(request)
    return await found.integrations.get(found.pool, tenant_id, SOURCES[source][0])


LIMITS_CACHE_SECONDS = 30.0  # a changed ceiling takes effect within this
_limits: dict[uuid.UUID, tuple[float, TenantSettings]] = {}


async def _ceiling(request: Request, tenant_id: uuid.UUID) -> None:
    """The tenant's ceiling on webhooks (TenantSettings.webhook_requests_per_second), never
    per key: over it, 429 with Retry-After, and the provider delivers again later."""
    cached = _limits.get(tenant_id)
    if cached and cached[0] > time.monotonic():
        limits = cached[1]
    else:
        limits = await tenant_settings(deps(request).pool, tenant_id)
        _limits[tenant_id] = (time.monotonic() + LIMITS_CACHE_SECONDS, limits)
    await deps(request).limits.check_webhooks(str(tenant_id), limits)


def _writer(request: Request) -> inbox.GroupCommit | None:
    """The app's group commit (None when FORMA3D_WEBHOOK_COMMIT_MS is 0)."""
    state = request.app.state
    writer: inbox.GroupCommit | None = getattr(state, "inbox_writer", None)
    if writer is None and not getattr(state, "inbox_writer_off", False):
        window = config().webhook_commit_ms / 1000
        if window <= 0:
            state.inbox_writer_off = True
            return None
        writer = state.inbox_writer = inbox.GroupCommit(deps(request).pool, window)
    return writer


async def receive(request: Request) -> Response:
    source = request.path_params["source"]
    try:
        response = await _receive(request, source)
    except Problem:
        metrics.inc("forma3d_webhooks", source=source if source in SOURCES else "unknown",
                    outcome="refused")
        raise
    except Exception:  # the database or the runtime failed us: the sender retries
        metrics.inc("forma3d_webhooks", source=source, outcome="error")
        raise
    metrics.inc("forma3d_webhooks", source=source,
                outcome="accepted" if response.body == ACCEPTED else "duplicate")
    return response


async def _receive(request: Request, source: str) -> Response:
    if source not in SOURCES:
        raise Problem(404, f"no webhook source {source!r}")
    tenant_id = parse_id(request.path_params["tenant_id"], "tenant")
    await _ceiling(request, tenant_id)
    body = await read_body(request, what="webhook body")
    settings = await _settings(request, tenant_id, source)
    if settings is None:
        raise Problem(401, f"{source} is not configured for this tenant")
    delivery = SOURCES[source][1](request, body, settings)
    headers = {k: v for k, v in request.headers.items()
               if k.startswith(("x-shopify", "x-sp-event", "content-type"))}
    message = WEBHOOK_MESSAGES[source]
    arrival = inbox.Arrival(tenant_id, source, delivery.key, delivery.topic, headers, body,
                            lambda inbox_id: message(tenant_id=tenant_id, inbox_id=inbox_id))
    writer = _writer(request)
    if writer is not None:
        inbox_id = await writer.accept(arrival)
    else:
        async with deps(request).pool.acquire() as conn, conn.transaction():
            inbox_id = (await inbox.accept(conn, [arrival]))[0]
    return Response(ACCEPTED if inbox_id else DUPLICATE, media_type="application/json")


routes = [Route("/webhooks/{tenant_id}/{source}", receive, methods=["POST"])]

