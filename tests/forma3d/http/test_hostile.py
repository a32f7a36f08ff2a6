"""A hostile corpus against every JSON endpoint of the API (found in its own OpenAPI document),
the list queries and a signed webhook: nothing reaches a 500, and the answers say what is wrong
(400 for JSON we will not parse, 413 for oversized bodies, 422 naming the field)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.http.routing import MAX_BODY_BYTES, MAX_JSON_DEPTH
from forma3d.integrations import signatures
from forma3d.integrations.settings import ShopifySettings
from forma3d.store.integrations import save_integration

PROBLEM = "application/problem+json"
DIGITS = "9" * 5000
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000

# Raw bodies every JSON endpoint must refuse with a 4xx, whatever its model.
CORPUS: dict[str, bytes] = {
    "deep array": DEEP_ARRAY,
    "deep object": DEEP_OBJECT,
    "nested just past the limit": b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1),
    "5,000-digit integer": b'{"name": ' + DIGITS.encode() + b"}",
    "5,000-digit fraction": b'{"name": 0.' + DIGITS.encode() + b"}",
    "huge exponent": b'{"name": 1e999999}',
    "NaN": b'{"name": NaN}',
    "Infinity": b"[Infinity]",
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
    "lone surrogate": b'{"name": "\\ud800", "sku": "\\udfff"}',
    "lone surrogate key": b'{"\\ud800": 1}',
    "NUL": b'{"name": "a\\u0000b", "sku": "\\u0000"}',
    "wrong types": b'{"name": 5, "sku": [], "parts": "x", "position": "first", "status": 1}',
    "a list": b"[1, 2, 3]",
    "a string": b'"text"',
    "a number": b"12",
    "int4 overflow": b'{"position": 2147483648, "quantity": 2147483648}',
    "int8 overflow": b'{"position": 9223372036854775808, "slot": 18446744073709551616}',
    "negative": b'{"position": -1, "quantity": -5, "slot": -1, "grams": -1}',
    "truncated": b'{"name": "abc',
    "empty object": b"{}",
}


@pytest.fixture
async def api(db_pool: Pool, redis_url: str,
              entities: LocalEntities) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process without rate limits: the corpus is hundreds of requests a second,
    and a 429 would answer them before the parsing and validation under test."""
    redis = aioredis.from_url(redis_url)
    deps = Deps(db_pool, redis, entities=entities)
    deps.limits.enabled = False
    transport = httpx.ASGITransport(app=build_app(deps))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await redis.aclose()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def json_operations(api: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(method, path with ids filled) of every operation with a JSON request body."""
    document = (await api.get("/api/v1/openapi.json")).json()
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                filled = path
                for param in operation.get("parameters", []):
                    if param["in"] == "path":
                        filled = filled.replace(f"{{{param['name']}}}", str(uuid.uuid4()))
                found.append((method.upper(), filled))
    return found


def assert_refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    return body


async def test_no_hostile_body_reaches_a_server_error(api: httpx.AsyncClient,
                                                      api_key: str) -> None:
    operations = await json_operations(api)
    api_operations = [(m, p) for m, p in operations if p.startswith("/api/v1/")]
    assert len(api_operations) >= 15  # every JSON endpoint, found in the document
    headers = {**auth(api_key), "Content-Type": "application/json"}
    for method, path in api_operations:
        for name, body in CORPUS.items():
            response = await api.request(method, path, content=body, headers=headers)
            assert response.status_code < 500, (method, path, name, response.text[:300])
            assert response.status_code != 429, (method, path, name)  # it reached the parser
            if name != "empty object":  # {} is valid for some (clear-finished, search)
                assert 400 <= response.status_code < 500, (method, path, name)


@pytest.mark.parametrize("name", ["deep array", "deep object", "nested just past the limit",
                                  "5,000-digit integer", "5,000-digit fraction", "huge exponent",
                                  "NaN", "Infinity", "invalid UTF-8", "truncated"])
async def test_unbounded_json_is_400(api: httpx.AsyncClient, api_key: str, name: str) -> None:
    response = await api.post("/api/v1/printers", content=CORPUS[name],
                              headers={**auth(api_key), "Content-Type": "application/json"})
    assert "malformed JSON" in assert_refused(response, 400)["detail"]


async def test_nesting_within_the_limit_is_parsed(api: httpx.AsyncClient, api_key: str) -> None:
    """The bound refuses only what is past it: a body nested to the limit reaches the model."""
    body = b'{"name": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    response = await api.post("/api/v1/printers", content=body,
                              headers={**auth(api_key), "Content-Type": "application/json"})
    assert assert_refused(response, 422)["errors"][0]["field"] == "name"


async def test_oversized_body_is_413(api: httpx.AsyncClient, api_key: str) -> None:
    body = b'{"name": "' + b"a" * MAX_BODY_BYTES + b'"}'
    response = await api.post("/api/v1/printers", content=body,
                              headers={**auth(api_key), "Content-Type": "application/json"})
    assert_refused(response, 413)


def fields_of(response: httpx.Response) -> set[str]:
    return {e["field"] for e in assert_refused(response, 422)["errors"]}


async def test_text_that_postgres_cannot_hold_is_422_naming_the_field(
        api: httpx.AsyncClient, api_key: str) -> None:
    headers = {**auth(api_key), "Content-Type": "application/json"}
    nul = await api.post("/api/v1/printers", headers=headers,
                         content=b'{"name": "MK4\\u0000", "tags": ["ok", "p\\u0000la"]}')
    assert fields_of(nul) == {"name", "tags.1"}
    surrogate = await api.post("/api/v1/printers", headers=headers,
                               content=b'{"name": "MK4 \\ud83d", "model": "\\udc00"}')
    assert fields_of(surrogate) == {"name", "model"}
    part = {"name": "x\u0000", "file_id": str(uuid.uuid4())}
    mapping = await api.post("/api/v1/product-mappings", headers=auth(api_key), json={
        "sku": "SKU\u0000", "name": "ok", "parts": [part]})
    assert fields_of(mapping) == {"sku", "parts.0.name"}
    force = await api.post(f"/api/v1/print-jobs/{uuid.uuid4()}/force-status", headers=headers,
                           content=b'{"status": "FAILED", "reason": "bad \\ud800 reason"}')
    assert fields_of(force) == {"reason"}


async def test_numbers_out_of_range_are_422_naming_the_field(api: httpx.AsyncClient,
                                                             api_key: str) -> None:
    job = uuid.uuid4()
    for position in (2**31, 2**63, -1):
        response = await api.post(f"/api/v1/print-jobs/{job}/reorder", headers=auth(api_key),
                                  json={"position": position})
        assert fields_of(response) == {"position"}
    mapping = await api.post("/api/v1/product-mappings", headers=auth(api_key), json={
        "sku": "S", "name": "N", "packaging_grams": "1e40",
        "parts": [{"name": "p", "file_id": str(uuid.uuid4()), "quantity": 2**31}]})
    assert fields_of(mapping) == {"packaging_grams", "parts.0.quantity"}
    printer = await api.post("/api/v1/printers", headers=auth(api_key), json={
        "name": "p", "nozzle_diameter": "1e9", "materials": [{"slot": 2**40, "type": "PLA",
                                                               "color": "red"}]})
    assert fields_of(printer) == {"nozzle_diameter", "materials.0.slot"}


async def test_patch_nulls_are_handled(api: httpx.AsyncClient, api_key: str) -> None:
    created = await api.post("/api/v1/printers", headers=auth(api_key),
                             json={"name": "P-1", "model": "MK4", "nozzle_diameter": "0.4"})
    assert created.status_code == 201, created.text
    path = f"/api/v1/printers/{created.json()['id']}"
    # Columns that always hold a value: null is refused, naming each field.
    refused = await api.patch(path, headers=auth(api_key), json={
        "name": None, "tags": None, "materials": None, "enabled": None, "ready": None,
        "auto_ready": None})
    assert fields_of(refused) == {"name", "tags", "materials", "enabled", "ready", "auto_ready"}
    # The document says the others may be null: they are cleared.
    cleared = await api.patch(path, headers=auth(api_key),
                              json={"model": None, "nozzle_diameter": None})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["model"] is None and cleared.json()["nozzle_diameter"] is None
    assert cleared.json()["name"] == "P-1"
    whole = await api.patch(path, headers={**auth(api_key), "Content-Type": "application/json"},
                            content=b"null")
    assert_refused(whole, 422)


HOSTILE_QUERIES = [
    "limit=99999999999999999999999999", "limit=-1", "offset=-5",
    "offset=9223372036854775808", "name=a%00b", "id=not-a-uuid",
    "created_at.gt=99999-01-01", "created_at.between=2020-01-01", "parts_total=" + DIGITS,
    "parts_total.in=" + ",".join(["1"] * 600), "total_price.gt=1e99999", "sort=nope:sideways",
    "fields=nope", "include=everything", "status=NOT_A_STATUS", "meta=maybe",
    "status.between=A,B",
]
# Undecodable bytes in a query string are replaced (U+FFFD) when it is decoded: plain text.
NORMALISED_QUERIES = ["name.contains=%ED%A0%80", "name.gt=%ff", "email=%C0%80"]


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_hostile_list_queries_are_400(api: httpx.AsyncClient, api_key: str,
                                            query: str) -> None:
    response = await api.get(f"/api/v1/orders?{query}", headers=auth(api_key))
    assert_refused(response, 400)


@pytest.mark.parametrize("query", NORMALISED_QUERIES)
async def test_undecodable_queries_are_plain_text(api: httpx.AsyncClient, api_key: str,
                                                  query: str) -> None:
    response = await api.get(f"/api/v1/orders?{query}", headers=auth(api_key))
    assert response.status_code == 200 and response.json() == []


async def test_hostile_search_bodies_are_400(api: httpx.AsyncClient, api_key: str) -> None:
    deep: Any = {"status": "PENDING"}
    for _ in range(40):
        deep = {"AND": [deep]}
    for body in ({"filter": deep}, {"filter": {"name": "a\u0000"}},
                 {"filter": {"parts_total": 2**70}}, {"limit": 2**64}, {"offset": -1},
                 {"filter": {"OR": "x"}}, {"filter": {"name": {"in": ["a"] * 501}}},
                 {"sort": [{"a": 1}]}, {"unknown\u0000": 1}):
        response = await api.post("/api/v1/orders/search", headers=auth(api_key), json=body)
        assert_refused(response, 400)
    surrogate = await api.post("/api/v1/orders/search", content=b'{"\\ud800": 1}',
                               headers={**auth(api_key), "Content-Type": "application/json"})
    assert_refused(surrogate, 422)  # the key is refused by the body's model


async def test_signed_webhook_with_unbounded_json_is_400_and_not_stored(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    """The webhooks parse with the same bounded parser: a signed body we would fail on later is
    refused before the 200, so no delivery is acknowledged and then lost."""
    await save_integration(db_pool, tenant_id, ShopifySettings(
        shop_domain="s.myshopify.com", access_token="t", webhook_secret="secret"))
    for body, statuses in ((DEEP_ARRAY, (400,)), (DEEP_OBJECT, (400,)),
                           # Parsed by the order model in one pass: refused as malformed, or
                           # as an id that fits no column (422 naming `id`).
                           (b'{"id": ' + DIGITS.encode() + b"}", (400, 422)),
                           (b'{"id": NaN}', (400, 422))):
        response = await api.post(f"/webhooks/{tenant_id}/shopify", content=body, headers={
            "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            signatures.SHOPIFY_HMAC_HEADER: signatures.shopify_signature("secret", body),
            "Content-Type": "application/json"})
        problem = assert_refused(response, *statuses)
        if response.status_code == 400:
            assert "malformed JSON" in problem["detail"]
        else:
            assert any(e["field"] == "id" for e in problem["errors"])
    stored = await db_pool.fetchval("SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1",
                                    tenant_id)
    assert stored == 0

