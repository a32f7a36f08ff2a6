"""Schemathesis against the app's own OpenAPI document, in-process: every operation gets
generated requests (positive and negative data) with a real API key against the real database,
and every answer must be no server error and match what the document promises.

The run is bounded and repeatable: a fixed number of examples per operation and mode, drawn
derandomized, so `scripts/test` stays fast and a failure reproduces.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies._internal.utils import clear_strategy_cache
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from actors.local import LocalEntities
from forma3d.db.pool import Pool, create_pool
from forma3d.domain.orders.states import OrderStatus
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.http.middleware import RequestIdMiddleware
from forma3d.http.routes.orders import ORDERS

BRIEF_EXAMPLES = 2  # scripts/test: every operation, a few cases each
EXAMPLES = 12  # per operation and mode: 52 x 2 x 12 = 1,248 requests, ~26 s of CPU measured
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
SKIPPED = {
    # Streams until the client leaves (text/event-stream), so it has no answer to check.
    ("GET", "/api/v1/live"),
}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class AppWithDeps:
    """The app, with its pool, Redis and in-process entities made on the event loop that
    serves it: Schemathesis calls ASGI apps from a thread of its own."""

    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url, self.redis_url = database_url, redis_url
        self.app: Starlette = build_app(Deps(pool=None, redis=None))  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()  # lifespan.startup
        pool: Pool = await create_pool(self.database_url, min_size=1, max_size=4)
        redis = aioredis.from_url(self.redis_url)
        entities = LocalEntities(self.database_url, pool_size=2)
        self.app.state.deps = deps = Deps(pool, redis, entities=entities)
        # Thousands of requests a second from one key: a 429 would answer them before the
        # parsing and validation under fuzz (the limiter has its own tests).
        deps.limits.enabled = False
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await entities.close()
        await redis.aclose()
        await pool.close()
        await send({"type": "lifespan.shutdown.complete"})


@pytest.fixture
def fuzzed_app(database_url: str, redis_url: str, db_pool: Pool) -> Iterator[AppWithDeps]:
    app = AppWithDeps(database_url, redis_url)
    yield app
    asgi.shutdown_lifespans()


@pytest.fixture
async def existing(api: httpx.AsyncClient, api_key: str) -> dict[str, str]:
    """Objects of the key's tenant, so positive cases reach real rows, not only 404s."""
    headers = auth(api_key)
    printer = await api.post("/api/v1/printers", json={"name": "Fuzz-01"}, headers=headers)
    upload = await api.post("/api/v1/print-files", params={"filename": "part.gcode"},
                            content=b"G1 X1 Y1\n", headers=headers)
    mapping = await api.post("/api/v1/product-mappings", headers=headers, json={
        "sku": "FUZZ-1", "name": "Fuzz", "parts": [{"name": "p", "file_id": upload.json()["id"]}]})
    assert (printer.status_code, upload.status_code, mapping.status_code) == (201, 201, 201)
    return {"printer_id": printer.json()["id"], "file_id": upload.json()["id"],
            "mapping_id": mapping.json()["id"]}


def _run(operation: Any, mode: GenerationMode, key: str, existing: dict[str, str],
         examples: int) -> tuple[Counter[int], list[str]]:
    """Sends `examples` generated requests to one operation; their statuses and failures.
    Positive cases use the existing object when the path names one."""
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    names = re.findall(r"{(\w+)}", operation.path)
    known = {n: existing[n] for n in names if n in existing}
    if mode is GenerationMode.POSITIVE and names and len(known) == len(names):
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=known)
    else:
        strategy = operation.as_strategy(generation_mode=mode)

    @given(case=strategy)
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def send(case: Any) -> None:
        response = case.call(headers={"Authorization": f"Bearer {key}"})
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except AssertionError as failure:  # FailureGroup is an AssertionError
            failures.append(f"{mode.value} {operation.label} -> {response.status_code}: "
                            f"{str(failure)[:2000]}")

    send()
    return statuses, failures


def fuzz(app: AppWithDeps, key: str, existing: dict[str, str], examples: int) -> None:
    """Every operation of the document, positive and negative cases: no 5xx, and every
    response conforms to its own schema."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Hypothesis caches strategies process-wide (1024 entries) and schemathesis' negative
            # mutations add keys that never repeat; past that size the cache fails inside a
            # draw, so the run depends on how many endpoints exist. Each operation starts clean.
            clear_strategy_cache()
            started = time.perf_counter()
            found, failed = _run(operation, mode, key, existing, examples)
            print(f"{operation.label} {mode.value}: {dict(found)} "
                  f"{time.perf_counter() - started:.1f}s")
            statuses.update(found)
            failures.extend(failed)
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    print(f"fuzzed {operations} operations, {sum(statuses.values())} requests: "
          f"{dict(sorted(statuses.items()))}; {server_errors} server errors, "
          f"{len(failures)} failed checks")
    assert operations >= 40  # every endpoint is in the document, webhooks included
    assert server_errors == 0 and not failures, "\n\n".join(failures[:20])


def test_fuzz_every_operation_briefly(fuzzed_app: AppWithDeps, api_key: str,
                                      existing: dict[str, str]) -> None:
    """The fast tier's run: a few cases per operation and mode, every operation."""
    fuzz(fuzzed_app, api_key, existing, BRIEF_EXAMPLES)


# Longer than the suite's 300 s: users, roles, keys and sessions added about 20 operations.
@pytest.mark.slow  # minutes on the 2-core machine: run by scripts/test-slow
@pytest.mark.timeout(900)
def test_fuzz_the_api_by_its_own_document(fuzzed_app: AppWithDeps, api_key: str,
                                          existing: dict[str, str]) -> None:
    fuzz(fuzzed_app, api_key, existing, EXAMPLES)


# --- the document tells the truth ---------------------------------------------------------------


async def document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


async def test_list_parameters_are_typed_from_the_query_spec(api: httpx.AsyncClient) -> None:
    params = {p["name"]: p for p in (await document(api))["paths"]["/api/v1/orders"]["get"][
        "parameters"]}
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1,
                                         "maximum": ORDERS.max_limit,
                                         "default": ORDERS.default_limit}
    assert params["meta"]["schema"]["type"] == "boolean"
    assert params["status"]["schema"]["enum"] == list(OrderStatus)
    assert params["parts_total.gte"]["schema"]["type"] == "integer"
    assert params["created_at.lt"]["schema"]["format"] == "date-time"
    assert params["id.in"]["schema"]["items"]["format"] == "uuid"
    assert params["id.in"]["style"] == "form" and params["id.in"]["explode"] is False
    assert params["name.startsWith"]["schema"]["type"] == "string"
    assert "shipping_address" not in params  # JSON columns filter on nothing
    # Every filterable field, with each operator its type takes.
    assert {n.partition('.')[0] for n in params} - {'sort', 'limit', 'offset', 'meta', 'fields',
                                                     'include'} == {
        f.name for f in ORDERS.fields if f.filterable}


async def test_every_documented_example_is_accepted(api: httpx.AsyncClient,
                                                    api_key: str) -> None:
    """Each search example (one per list, from its own fields) and the sort example of each
    list answer 200; the printer examples are created and changed."""
    paths = (await document(api))["paths"]
    tried = 0
    for path, methods in paths.items():
        if "{" in path:
            continue
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if path.endswith("/search"):
                response = await api.post(path, json=body["example"], headers=auth(api_key))
                assert response.status_code == 200, (path, body["example"], response.text)
                tried += 1
            elif method == "get" and "parameters" in operation:
                sort = next((p for p in operation["parameters"] if p["name"] == "sort"), None)
                if sort is None:  # filters without a page, e.g. /print-jobs/required-tags
                    continue
                response = await api.get(path, params={"sort": sort["schema"]["example"]},
                                         headers=auth(api_key))
                assert response.status_code == 200, (path, response.text)
                tried += 1
    assert tried >= 14
    schemas = (await document(api))["components"]["schemas"]
    [new] = schemas["PrinterIn"]["examples"]
    created = await api.post("/api/v1/printers", json=new, headers=auth(api_key))
    assert created.status_code == 201, created.text


async def test_webhooks_are_documented_with_their_headers(api: httpx.AsyncClient) -> None:
    paths = (await document(api))["paths"]
    headers = {source: {p["name"] for p in paths[f"/webhooks/{{tenant_id}}/{source}"]["post"][
        "parameters"] if p["in"] == "header"} for source in ("shopify", "simplyprint",
                                                              "sendcloud")}
    assert {"X-Shopify-Hmac-Sha256", "X-Shopify-Topic"} <= headers["shopify"]
    assert headers["simplyprint"] == {"X-SP-Secret", "X-SP-Token"}
    assert headers["sendcloud"] == {"Sendcloud-Signature"}


async def test_one_request_id_per_response(api: httpx.AsyncClient, api_key: str) -> None:
    for response in (await api.get("/health/live"), await api.get("/api/v1/orders"),
                     await api.get("/api/v1/orders", headers=auth(api_key)),
                     await api.post("/api/v1/printers", content=b"{", headers=auth(api_key))):
        assert len(response.headers.get_list("x-request-id")) == 1


async def test_behind_serve_the_request_id_is_left_to_serve() -> None:
    """Serve's HTTP server appends X-Request-ID itself; the app then adds none of its own."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-request-id", b"inner")]})

    async def record(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"x-request-id", b"from-serve")]}
    await RequestIdMiddleware(app, echo=False)(scope, record, record)  # type: ignore[arg-type]
    await RequestIdMiddleware(app)(scope, record, record)  # type: ignore[arg-type]
    assert sent[0]["headers"] == [(b"x-request-id", b"inner")]
    assert sent[1]["headers"] == [(b"x-request-id", b"from-serve")]


async def test_405_names_the_allowed_methods(api: httpx.AsyncClient, api_key: str) -> None:
    response = await api.delete("/api/v1/printers", headers=auth(api_key))
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    webhook = await api.get(f"/webhooks/{uuid.uuid4()}/shopify")
    assert webhook.status_code == 405 and webhook.headers["allow"] == "POST"
