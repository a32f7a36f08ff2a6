"""Nothing acknowledged that cannot be processed: every hostile webhook is refused with a 4xx
problem (naming the field when one is at fault) and nothing is stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.integrations import signatures
from forma3d.messaging.tenant import WEBHOOK_MESSAGES
from tests.forma3d.http.test_webhooks import ORDER, shopify_headers, stored, wired  # noqa: F401

DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE_NUMBER = b"9" * 5_000


def _raw(text: str) -> bytes:
    """A JSON document written by hand (escapes such as a lone surrogate kept as sent)."""
    return text.encode()


def _with(base: dict[str, Any], path: str, value: Any) -> bytes:
    """`base` with the value at a dotted path replaced (list indexes as numbers)."""
    document = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return json.dumps(document).encode()


def _spliced(base: dict[str, Any], field: str, raw: bytes) -> bytes:
    """`base` with a top-level field whose JSON text is `raw` (not expressible via json.dumps)."""
    return json.dumps(base).encode()[:-1] + b', "' + field.encode() + b'": ' + raw + b"}"


LINE = ORDER["line_items"][0]
SHOPIFY: dict[str, tuple[bytes, str | None]] = {
    "deep nesting": (_spliced(ORDER, "note_attributes", DEEP), None),
    "huge number in an ignored field": (_spliced(ORDER, "total_weight", HUGE_NUMBER), None),
    "huge number as the id": (_spliced({k: v for k, v in ORDER.items() if k != "id"}, "id",
                                       HUGE_NUMBER), None),
    "order id 2^63": (_with(ORDER, "id", 2**63), "id"),
    "negative order id": (_with(ORDER, "id", -5), "id"),
    "zero order id": (_with(ORDER, "id", 0), "id"),
    "order id as text": (_with(ORDER, "id", "abc"), "id"),
    "order id as a fraction": (_with(ORDER, "id", 1.5), "id"),
    "order id as a boolean": (_with(ORDER, "id", True), "id"),
    "line item id 2^63": (_with(ORDER, "line_items.0.id", 2**63), "line_items.0.id"),
    "variant id 2^63": (_with(ORDER, "line_items.0", {**LINE, "variant_id": 2**63}),
                        "line_items.0.variant_id"),
    "quantity 2^31": (_with(ORDER, "line_items.0.quantity", 2**31), "line_items.0.quantity"),
    "negative quantity": (_with(ORDER, "line_items.0.quantity", -1), "line_items.0.quantity"),
    "quantity as text": (_with(ORDER, "line_items.0.quantity", "two"), "line_items.0.quantity"),
    "line items not a list": (_with(ORDER, "line_items", "x"), "line_items"),
    "NUL in the name": (_with(ORDER, "name", "#10\x0001"), "name"),
    "NUL in the email": (_with(ORDER, "email", "a\x00@b.c"), "email"),
    "NUL in the SKU": (_with(ORDER, "line_items.0.sku", "SKU\x00"), "line_items.0.sku"),
    "NUL in a property": (_with(ORDER, "line_items.0.properties",
                                [{"name": "Engraving", "value": "a\x00b"}]),
                          "line_items.0.properties.Engraving"),
    "NUL in the address": (_with(ORDER, "shipping_address", {"city": "Ein\x00dhoven"}),
                           "shipping_address.city"),
    "lone surrogate in the name": (_raw(json.dumps(ORDER).replace('"#1001"', '"#\\ud800"')),
                                   None),
    "invalid UTF-8": (json.dumps(ORDER).encode().replace(b"#1001", b"#\xed\xa0\x80"), None),
    "price past numeric(12, 2)": (_with(ORDER, "total_price", "99999999999.00"), "total_price"),
    "price not a number": (_with(ORDER, "total_price", "NaN"), "total_price"),
    "body an array": (b"[1, 2]", None),
    "body null": (b"null", None),
    "empty body": (b"", None),
    "oversized body": (_with(ORDER, "note", "x" * (2 << 20)), None),
}

FARM_BASE: dict[str, Any] = {"webhook_id": 1, "event": "job.done", "timestamp": 1705320000,
                             "data": {"job": {"uid": "pj_1", "printer_id": 3}}}
SIMPLYPRINT: dict[str, tuple[bytes, str | None]] = {
    "deep nesting": (_spliced(FARM_BASE, "extra", DEEP), None),
    "huge number": (_spliced(FARM_BASE, "extra", HUGE_NUMBER), None),
    "data a string": (_with(FARM_BASE, "data", "x"), "data"),
    "data a list": (_with(FARM_BASE, "data", [1]), "data"),
    "job a number": (_with(FARM_BASE, "data.job", 5), "data.job"),
    "printer id not numeric": (_with(FARM_BASE, "data.job.printer_id", "printer-3"),
                               "data.job.printer_id"),
    "printer id 2^63": (_with(FARM_BASE, "data.job.printer_id", 2**63), "data.job.printer_id"),
    "negative printer id": (_with(FARM_BASE, "data.job.printer_id", -3), "data.job.printer_id"),
    "nested printer id not numeric": (_with(FARM_BASE, "data", {"printer": {"id": "x"}}),
                                      "data.printer.id"),
    "queue item id not numeric": (_with(FARM_BASE, "data", {"queue_item": {"id": "q"}}),
                                  "data.queue_item.id"),
    "NUL in the event": (_with(FARM_BASE, "event", "job.\x00done"), "event"),
    "NUL in a forwarded job field": (_with(FARM_BASE, "data.job",
                                           {"uid": "pj_1", "file": "a\x00.gcode"}),
                                     "data.job.file"),
    "timestamp past year 9999": (_with(FARM_BASE, "timestamp", 10**13), "timestamp"),
    "negative timestamp": (_with(FARM_BASE, "timestamp", -1), "timestamp"),
    "timestamp as text": (_with(FARM_BASE, "timestamp", "yesterday"), "timestamp"),
    "no event": (json.dumps({"timestamp": 1}).encode(), "event"),
    "lone surrogate": (_raw(json.dumps(FARM_BASE).replace('"pj_1"', '"\\udc00"')), None),
    "body an array": (b"[]", None),
}

PARCEL_BASE: dict[str, Any] = {"action": "parcel_status_changed", "timestamp": 1525271885993,
                               "parcel": {"id": 9, "status": {"id": 3, "message": "En route"}}}
SENDCLOUD: dict[str, tuple[bytes, str | None]] = {
    "deep nesting": (_spliced(PARCEL_BASE, "extra", DEEP), None),
    "huge number": (_spliced(PARCEL_BASE, "extra", HUGE_NUMBER), None),
    "parcel a string": (_with(PARCEL_BASE, "parcel", "9"), "parcel"),
    "parcel a list": (_with(PARCEL_BASE, "parcel", [9]), "parcel"),
    "parcel id not numeric": (_with(PARCEL_BASE, "parcel.id", "abc"), "parcel.id"),
    "parcel id 2^63": (_with(PARCEL_BASE, "parcel.id", 2**63), "parcel.id"),
    "status id 2^31": (_with(PARCEL_BASE, "parcel.status.id", 2**31), "parcel.status.id"),
    "status a string": (_with(PARCEL_BASE, "parcel.status", "delivered"), "parcel.status"),
    "NUL in the status message": (_with(PARCEL_BASE, "parcel.status.message", "a\x00"),
                                  "parcel.status.message"),
    "timestamp past year 9999": (_with(PARCEL_BASE, "timestamp", 10**17), "timestamp"),
    "no action": (json.dumps({"parcel": {"id": 9}}).encode(), "action"),
    "lone surrogate": (_raw(json.dumps(PARCEL_BASE).replace('"En route"', '"\\ud800x"')),
                       None),
    "body a number": (b"5", None),
}


async def _refused(api: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str],
                   field: str | None) -> None:
    response = await api.post(url, content=body, headers=headers)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize("case", sorted(SHOPIFY))
async def test_hostile_shopify_order_is_refused(api: httpx.AsyncClient, db_pool: Pool,
                                                wired: uuid.UUID, case: str) -> None:  # noqa: F811
    body, field = SHOPIFY[case]
    await _refused(api, f"/webhooks/{wired}/shopify", body, shopify_headers(body), field)
    assert await stored(db_pool, wired) == (0, 0)


@pytest.mark.parametrize("case", sorted(SIMPLYPRINT))
async def test_hostile_simplyprint_webhook_is_refused(api: httpx.AsyncClient, db_pool: Pool,
                                                      wired: uuid.UUID,  # noqa: F811
                                                      case: str) -> None:
    body, field = SIMPLYPRINT[case]
    await _refused(api, f"/webhooks/{wired}/simplyprint", body, {"X-SP-Secret": "sp-secret"},
                   field)
    assert await stored(db_pool, wired) == (0, 0)


@pytest.mark.parametrize("case", sorted(SENDCLOUD))
async def test_hostile_sendcloud_webhook_is_refused(api: httpx.AsyncClient, db_pool: Pool,
                                                    wired: uuid.UUID,  # noqa: F811
                                                    case: str) -> None:
    body, field = SENDCLOUD[case]
    headers = {signatures.SENDCLOUD_SIGNATURE_HEADER: signatures.sendcloud_signature(
        "sc-secret", body)}
    await _refused(api, f"/webhooks/{wired}/sendcloud", body, headers, field)
    assert await stored(db_pool, wired) == (0, 0)


async def test_deep_nesting_under_a_non_order_topic_is_refused(
        api: httpx.AsyncClient, db_pool: Pool, wired: uuid.UUID) -> None:  # noqa: F811
    headers = {**shopify_headers(DEEP), "X-Shopify-Topic": "products/update"}
    response = await api.post(f"/webhooks/{wired}/shopify", content=DEEP, headers=headers)
    assert response.status_code == 400
    assert await stored(db_pool, wired) == (0, 0)


async def test_the_edges_of_every_range_are_accepted(api: httpx.AsyncClient, db_pool: Pool,
                                                     entities: LocalEntities,
                                                     wired: uuid.UUID) -> None:  # noqa: F811
    """The checks refuse only what does not fit: the largest values that fit are stored, and
    processed."""
    order = {**ORDER, "id": 2**63 - 1, "total_price": "9999999999.99",
             "line_items": [{**LINE, "id": 2**63 - 1, "quantity": 2**31 - 1,
                             "variant_id": "123", "title": None}]}
    body = json.dumps(order).encode()
    response = await api.post(f"/webhooks/{wired}/shopify", content=body,
                              headers=shopify_headers(body))
    assert response.status_code == 200, response.text
    farm = json.dumps({**FARM_BASE, "data": {"job": {"uid": 42, "printer_id": "3"}}}).encode()
    response = await api.post(f"/webhooks/{wired}/simplyprint", content=farm,
                              headers={"X-SP-Secret": "sp-secret"})
    assert response.status_code == 200, response.text
    assert await stored(db_pool, wired) == (2, 2)
    # Acknowledged, so processed: the tenant entity takes the order at its edges to the end
    # (the farm delivery would ask SimplyPrint, which this tenant's settings do not reach).
    inbox_id = await db_pool.fetchval("SELECT id FROM webhook_inbox WHERE tenant_id = $1"
                                      " AND source = 'shopify'", wired)
    await entities.call(WEBHOOK_MESSAGES["shopify"](tenant_id=wired, inbox_id=inbox_id))
    done = await db_pool.fetchrow("SELECT processed_at, dead_lettered_at, error"
                                  " FROM webhook_inbox WHERE id = $1", inbox_id)
    assert done["processed_at"] is not None and done["dead_lettered_at"] is None, done["error"]
    assert await db_pool.fetchval(
        "SELECT li.quantity FROM orders o JOIN line_items li ON li.order_id = o.id"
        " WHERE o.tenant_id = $1 AND o.shopify_order_id = $2", wired, 2**63 - 1) == 2**31 - 1
