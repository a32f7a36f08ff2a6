"""Webhook ingress: verified, stored once, answered fast; bad input changes nothing."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.integrations import signatures
from forma3d.integrations.settings import SendcloudSettings, ShopifySettings, SimplyPrintSettings
from forma3d.messaging.envelope import Envelope
from forma3d.messaging.message import parse
from forma3d.messaging.tenant import ShopifyWebhook
from forma3d.store.integrations import save_integration

SHOP_SECRET = "shop-secret"
ORDER = {"id": 820982911946154508, "name": "#1001", "email": "jon@example.com",
         "line_items": [{"id": 466157049, "sku": "BENCHY-PLA-RED", "quantity": 2,
                         "properties": [{"name": "Engraving", "value": "Hi"}]}]}


@pytest.fixture
async def wired(db_pool: Pool, tenant_id: uuid.UUID) -> uuid.UUID:
    await save_integration(db_pool, tenant_id, ShopifySettings(
        shop_domain="s.myshopify.com", access_token="t", webhook_secret=SHOP_SECRET))
    await save_integration(db_pool, tenant_id, SimplyPrintSettings(
        company_id=1, api_key="k", webhook_secret="sp-secret"))
    await save_integration(db_pool, tenant_id, SendcloudSettings(
        public_key="p", secret_key="sc-secret"))
    return tenant_id


def shopify_headers(body: bytes, *, event: str | None = None,
                    secret: str = SHOP_SECRET) -> dict[str, str]:
    return {"X-Shopify-Topic": "orders/create",
            "X-Shopify-Hmac-Sha256": signatures.shopify_signature(secret, body),
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event or str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "s.myshopify.com", "X-Shopify-API-Version": "2024-07",
            "Content-Type": "application/json"}


async def stored(db_pool: Pool, tenant_id: uuid.UUID) -> tuple[int, int]:
    inbox = await db_pool.fetchval("SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1",
                                   tenant_id)
    outbox = await db_pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1", tenant_id)
    return inbox, outbox


async def test_signed_order_is_stored_once(api: httpx.AsyncClient, db_pool: Pool,
                                           wired: uuid.UUID) -> None:
    body = json.dumps(ORDER).encode()
    event = str(uuid.uuid4())
    first = await api.post(f"/webhooks/{wired}/shopify", content=body,
                           headers=shopify_headers(body, event=event))
    assert first.status_code == 200 and first.json() == {"status": "accepted"}
    again = await api.post(f"/webhooks/{wired}/shopify", content=body,
                           headers=shopify_headers(body, event=event))
    assert again.json() == {"status": "duplicate"}
    assert await stored(db_pool, wired) == (1, 1)
    message = await db_pool.fetchrow("SELECT * FROM outbox WHERE tenant_id = $1", wired)
    assert message["target_kind"] == "tenant" and message["message_type"] == "shopify.webhook"
    inbox_id = await db_pool.fetchval("SELECT id FROM webhook_inbox WHERE tenant_id = $1", wired)
    assert parse(Envelope(message["target_kind"], message["target_key"], message["message_type"],
                          str(wired), message["payload"])) == ShopifyWebhook(tenant_id=wired,
                                                                              inbox_id=inbox_id)


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
async def test_unsigned_or_wrongly_signed_is_401(api: httpx.AsyncClient, db_pool: Pool,
                                                 wired: uuid.UUID, secret: str) -> None:
    body = json.dumps(ORDER).encode()
    headers = shopify_headers(body, secret=secret or "x")
    if not secret:
        del headers["X-Shopify-Hmac-Sha256"]
    response = await api.post(f"/webhooks/{wired}/shopify", content=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert await stored(db_pool, wired) == (0, 0)


async def test_malformed_missing_field_and_huge_are_4xx(api: httpx.AsyncClient, db_pool: Pool,
                                                        wired: uuid.UUID) -> None:
    url = f"/webhooks/{wired}/shopify"
    malformed = b'{"id": 1, "line_items": ['
    response = await api.post(url, content=malformed, headers=shopify_headers(malformed))
    assert response.status_code == 400 and "malformed JSON" in response.json()["detail"]

    missing = json.dumps({k: v for k, v in ORDER.items() if k != "line_items"}).encode()
    response = await api.post(url, content=missing, headers=shopify_headers(missing))
    assert response.status_code == 422
    assert any(e["field"] == "line_items" for e in response.json()["errors"])

    huge = json.dumps({**ORDER, "note": "x" * (2 << 20)}).encode()
    response = await api.post(url, content=huge, headers=shopify_headers(huge))
    assert response.status_code == 413
    assert await stored(db_pool, wired) == (0, 0)


async def test_unknown_tenant_or_source_changes_nothing(api: httpx.AsyncClient,
                                                        wired: uuid.UUID) -> None:
    body = json.dumps(ORDER).encode()
    other = await api.post(f"/webhooks/{uuid.uuid4()}/shopify", content=body,
                           headers=shopify_headers(body))
    assert other.status_code == 401  # a tenant without Shopify configured cannot verify
    unknown = await api.post(f"/webhooks/{wired}/etsy", content=body)
    assert unknown.status_code == 404


async def test_simplyprint_secret_header_either_name(api: httpx.AsyncClient, db_pool: Pool,
                                                     wired: uuid.UUID) -> None:
    body = json.dumps({"webhook_id": 1, "event": "job.done", "timestamp": 1705320000,
                       "data": {"job": {"uid": "pj_1", "printer_id": 3}}}).encode()
    url = f"/webhooks/{wired}/simplyprint"
    assert (await api.post(url, content=body, headers={"X-SP-Token": "sp-secret"})
            ).json()["status"] == "accepted"
    assert (await api.post(url, content=body, headers={"X-SP-Secret": "sp-secret"})
            ).json()["status"] == "duplicate"
    assert (await api.post(url, content=body, headers={"X-SP-Secret": "nope"})).status_code == 401
    no_event = json.dumps({"data": {}}).encode()
    response = await api.post(url, content=no_event, headers={"X-SP-Secret": "sp-secret"})
    assert response.status_code == 422
    assert await stored(db_pool, wired) == (1, 1)


async def test_sendcloud_signature_over_raw_bytes(api: httpx.AsyncClient, db_pool: Pool,
                                                  wired: uuid.UUID) -> None:
    body = json.dumps({"action": "parcel_status_changed", "timestamp": 1525271885993,
                       "parcel": {"id": 9, "status": {"id": 3, "message": "En route"}}}).encode()
    url = f"/webhooks/{wired}/sendcloud"
    good = {signatures.SENDCLOUD_SIGNATURE_HEADER: signatures.sendcloud_signature(
        "sc-secret", body)}
    assert (await api.post(url, content=body, headers=good)).json()["status"] == "accepted"
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    response = await api.post(url, content=reserialised, headers=good)
    assert response.status_code == 401
    assert await stored(db_pool, wired) == (1, 1)


REFUND = {"id": 509562969, "order_id": ORDER["id"], "created_at": "2026-03-01T12:00:00Z",
          "note": "damaged", "restock": True,
          "refund_line_items": [{"id": 104689539, "line_item_id": 466157049, "quantity": 1,
                                 "restock_type": "cancel", "subtotal": "12.50"}],
          "transactions": [{"id": 1, "kind": "refund", "amount": "12.50"}]}


async def test_refunds_and_live_order_fields_are_checked_and_stored(
        api: httpx.AsyncClient, db_pool: Pool, wired: uuid.UUID) -> None:
    body = json.dumps(REFUND).encode()
    headers = shopify_headers(body) | {"X-Shopify-Topic": "refunds/create"}
    accepted = await api.post(f"/webhooks/{wired}/shopify", content=body, headers=headers)
    assert accepted.status_code == 200 and accepted.json() == {"status": "accepted"}
    topic = await db_pool.fetchval("SELECT topic FROM webhook_inbox WHERE tenant_id = $1", wired)
    assert topic == "refunds/create"

    bad = json.dumps(REFUND | {"refund_line_items": [{"line_item_id": 1, "quantity": -1}]})
    refused = await api.post(f"/webhooks/{wired}/shopify", content=bad.encode(),
                             headers=shopify_headers(bad.encode()) | {
                                 "X-Shopify-Topic": "refunds/create"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "refund_line_items.0.quantity"

    paid = json.dumps(ORDER | {"financial_status": "paid", "line_items": [
        ORDER["line_items"][0] | {"current_quantity": -2}]}).encode()
    refused = await api.post(f"/webhooks/{wired}/shopify", content=paid,
                             headers=shopify_headers(paid) | {"X-Shopify-Topic": "orders/paid"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "line_items.0.current_quantity"
    assert await stored(db_pool, wired) == (1, 1)
