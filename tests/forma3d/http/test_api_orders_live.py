"""Operators' order commands over HTTP (in-process app and entities, real PostgreSQL): an order
made by API, held and released with a reason, cancelled with a reason; bad bodies are
problem+json naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.http.routes.api import api as router

PROBLEM = "application/problem+json"
ORDER = {"reference": "fair-2026-0042", "email": "jane@example.com",
         "shipping_address": {"name": "Jane Smith", "address1": "Stadhuisplein 10",
                              "city": "Eindhoven", "zip": "5611 EM", "country_code": "NL"},
         "line_items": [{"sku": "BENCHY-PLA-RED", "quantity": 3},
                        {"sku": "GIFT-WRAP", "quantity": 1, "requires_shipping": False}]}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def outbox(pool: Pool, tenant_id: uuid.UUID, message_type: str) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE tenant_id = $1"
                            " AND message_type = $2 ORDER BY id", tenant_id, message_type)
    return [dict(r["payload"]) for r in rows]


@pytest.mark.db
async def test_an_order_made_by_api_is_stored_once_and_started(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    made = await api.post("/api/v1/orders", json=ORDER, headers=auth(api_key))
    assert made.status_code == 201, made.text
    order = made.json()
    assert (order["source"], order["reference"], order["shopify_order_id"], order["name"],
            order["status"], order["financial_status"]) == (
        "manual", "fair-2026-0042", None, "fair-2026-0042", "PENDING", "paid")
    assert [(i["sku"], i["quantity"], i["requires_shipping"]) for i in order["line_items"]] == [
        ("BENCHY-PLA-RED", 3, True), ("GIFT-WRAP", 1, False)]
    assert order["shipping_address"]["country_code"] == "NL"
    [start] = await outbox(db_pool, tenant_id, "order.start")
    assert start["order_id"] == order["id"]

    again = await api.post("/api/v1/orders", json=ORDER, headers=auth(api_key))
    assert again.status_code == 200 and again.json()["id"] == order["id"]
    assert len(await outbox(db_pool, tenant_id, "order.start")) == 1

    bad = await api.post("/api/v1/orders", headers=auth(api_key), json=ORDER | {
        "line_items": [{"sku": "X", "quantity": 0}]})
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM
    assert bad.json()["errors"][0]["field"] == "line_items.0.quantity"
    no_country = await api.post("/api/v1/orders", headers=auth(api_key), json=ORDER | {
        "reference": "r2", "shipping_address": ORDER["shipping_address"] | {
            "country_code": "Netherlands"}})
    assert no_country.status_code == 422
    assert no_country.json()["errors"][0]["field"] == "shipping_address.country_code"


@pytest.mark.db
async def test_hold_release_and_cancel_carry_the_operators_reason(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = (await api.post("/api/v1/orders", json=ORDER, headers=auth(api_key))).json()["id"]

    missing = await api.post(f"/api/v1/orders/{order_id}/hold", json={}, headers=auth(api_key))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason"
    held = await api.post(f"/api/v1/orders/{order_id}/hold", headers=auth(api_key),
                          json={"reason": "address to be confirmed"})
    assert held.status_code == 200, held.text
    assert (held.json()["status"], held.json()["hold_reason"], held.json()["reason"]) == (
        "ON_HOLD", "address to be confirmed", "address to be confirmed")
    twice = await api.post(f"/api/v1/orders/{order_id}/hold", headers=auth(api_key),
                           json={"reason": "again"})
    assert twice.status_code == 409 and "held already" in twice.json()["detail"]

    released = await api.post(f"/api/v1/orders/{order_id}/release", headers=auth(api_key))
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["hold_reason"]) == ("PENDING", None)
    assert len(await outbox(db_pool, tenant_id, "order.start")) == 2  # expanded again
    not_held = await api.post(f"/api/v1/orders/{order_id}/release", headers=auth(api_key))
    assert not_held.status_code == 409

    cancelled = await api.post(f"/api/v1/orders/{order_id}/cancel", headers=auth(api_key),
                               json={"reason": "customer changed their mind"})
    assert cancelled.status_code == 202
    [cancel] = await outbox(db_pool, tenant_id, "order.cancel")
    assert cancel["reason"] == "customer changed their mind"

    elsewhere = await api.post(f"/api/v1/orders/{uuid.uuid4()}/hold", headers=auth(api_key),
                               json={"reason": "x"})
    assert elsewhere.status_code == 404 and elsewhere.headers["content-type"] == PROBLEM
    events = await db_pool.fetch("SELECT type FROM event_log WHERE tenant_id = $1 AND type IN"
                                 " ('order.held', 'order.released') ORDER BY id", tenant_id)
    assert [e["type"] for e in events] == ["order.held", "order.released"]


def test_the_order_commands_declare_their_permissions() -> None:
    declared = {(e.method, e.path): e.permission for e in router.endpoints}
    assert declared[("POST", "/orders")] == "orders.create"
    assert declared[("POST", "/orders/{order_id}/hold")] == "orders.hold"
    assert declared[("POST", "/orders/{order_id}/release")] == "orders.release"
    assert declared[("POST", "/orders/{order_id}/cancel")] == "orders.cancel"
