"""Inbound webhooks: verify, store raw under a unique delivery key, answer fast, tell the tenant.

The inbox row and the tenant's outbox message are one transaction, so an acknowledged webhook
is never lost, and a replay inserts nothing and tells no one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.domain.orders.shopify_order import ORDER_TOPICS, ShopifyOrder
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
from forma3d.messaging.tenant import FarmWebhook, SendcloudWebhook, ShopifyWebhook
from forma3d.store import inbox
from forma3d.store.integrations import load_integration
from forma3d.store.outbox import send

SECRET_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Delivery:
    key: str
    topic: str
    message: type[ShopifyWebhook | FarmWebhook | SendcloudWebhook]


def _json(body: bytes) -> dict[str, Any]:
    value = parse_json(body, "webhook body")
    if not isinstance(value, dict):
        raise Problem(400, "the webhook body must be a JSON object")
    return value


def _shopify(request: Request, body: bytes, settings: Any) -> Delivery:
    if not signatures.verify_shopify(settings.webhook_secret, body,
                                     request.headers.get(signatures.SHOPIFY_HMAC_HEADER)):
        raise Problem(401, "X-Shopify-Hmac-Sha256 does not match the body")
    topic = request.headers.get("x-shopify-topic")
    key = request.headers.get("x-shopify-event-id") or request.headers.get("x-shopify-webhook-id")
    if not topic or not key:
        raise Problem(400, "X-Shopify-Topic and X-Shopify-Webhook-Id are required")
    payload = _json(body)
    if topic in ORDER_TOPICS:
        try:
            ShopifyOrder.model_validate(payload)
        except ValueError as error:
            errors = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                      for e in getattr(error, "errors", lambda: [])()]
            raise Problem(422, "not a valid Shopify order", errors=errors) from None
    return Delivery(f"{topic}:{key}", topic, ShopifyWebhook)


def _simplyprint(request: Request, body: bytes, settings: Any) -> Delivery:
    if not signatures.verify_simplyprint(settings.webhook_secret, request.headers):
        raise Problem(401, "X-SP-Secret (or X-SP-Token) does not match")
    payload = _json(body)
    event = payload.get("event")
    if not isinstance(event, str) or "timestamp" not in payload:
        raise Problem(422, "a SimplyPrint webhook needs event and timestamp",
                      errors=[{"field": f, "message": "required"} for f in ("event", "timestamp")
                              if f not in payload])
    data = payload.get("data") or {}
    subject = (data.get("job") or {}).get("uid") or (data.get("queue_item") or {}).get("id")
    return Delivery(f"{event}:{subject}:{payload['timestamp']}", event, FarmWebhook)


def _sendcloud(request: Request, body: bytes, settings: Any) -> Delivery:
    if not signatures.verify_sendcloud(settings.signing_key, body,
                                       request.headers.get(signatures.SENDCLOUD_SIGNATURE_HEADER)):
        raise Problem(401, "Sendcloud-Signature does not match the body")
    payload = _json(body)
    action = payload.get("action")
    if not isinstance(action, str):
        raise Problem(422, "a Sendcloud webhook needs an action",
                      errors=[{"field": "action", "message": "required"}])
    parcel = payload.get("parcel") or {}
    status = (parcel.get("status") or {}).get("id")
    return Delivery(f"{action}:{parcel.get('id')}:{status}:{payload.get('timestamp')}", action,
                    SendcloudWebhook)


SOURCES: dict[str, tuple[type[IntegrationSettings],
                         Callable[[Request, bytes, Any], Delivery]]] = {
    "shopify": (ShopifySettings, _shopify),
    "simplyprint": (SimplyPrintSettings, _simplyprint),
    "sendcloud": (SendcloudSettings, _sendcloud),
}
_secrets: dict[tuple[uuid.UUID, str], tuple[float, Any]] = {}


async def _settings(request: Request, tenant_id: uuid.UUID, source: str) -> Any:
    cached = _secrets.get((tenant_id, source))
    if cached and cached[0] > time.monotonic():
        return cached[1]
    settings = await load_integration(deps(request).pool, tenant_id, SOURCES[source][0])
    _secrets[(tenant_id, source)] = (time.monotonic() + SECRET_CACHE_SECONDS, settings)
    return settings


async def receive(request: Request) -> Response:
    source = request.path_params["source"]
    if source not in SOURCES:
        raise Problem(404, f"no webhook source {source!r}")
    tenant_id = parse_id(request.path_params["tenant_id"], "tenant")
    body = await read_body(request, what="webhook body")
    settings = await _settings(request, tenant_id, source)
    if settings is None:
        raise Problem(401, f"{source} is not configured for this tenant")
    delivery = SOURCES[source][1](request, body, settings)
    headers = {k: v for k, v in request.headers.items()
               if k.startswith(("x-shopify", "x-sp-event", "content-type"))}
    async with deps(request).pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, tenant_id, source, delivery.key, delivery.topic,
                                     headers, body)
        if inbox_id is not None:
            await send(conn, delivery.message(tenant_id=tenant_id, inbox_id=inbox_id))
    return JSONResponse({"status": "accepted" if inbox_id else "duplicate"})


def webhook_url(base: str, tenant_id: uuid.UUID | str, source: str) -> str:
    return f"{base.rstrip('/')}/webhooks/{tenant_id}/{source}"


routes = [Route("/webhooks/{tenant_id}/{source}", receive, methods=["POST"])]
