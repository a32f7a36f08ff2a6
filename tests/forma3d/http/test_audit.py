"""The audit trail over HTTP: every write (one or more per route module that writes, refused
ones included) leaves exactly one row naming its actor, reads leave none, secrets stay out,
the trail is listed through the query language and cannot be changed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.http.routes.api import api as router
from forma3d.store import audit
from forma3d.store.apikeys import create_api_key
from forma3d.store.audit import Actor, AuditEntry
from tests.forma3d.http.test_api_mappings import GCODE, mapping

pytestmark = pytest.mark.db


@dataclass
class Sent:
    method: str
    route: str
    request_id: str
    status: int
    body: Any


class Caller:
    """Sends requests with a fresh X-Request-ID each and keeps what it sent."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client = client
        self.key = key
        self.writes: list[Sent] = []
        self.reads: list[str] = []

    async def write(self, method: str, path: str, route: str, **kwargs: Any) -> httpx.Response:
        request_id = f"audit-{uuid.uuid4().hex}"
        headers = {"Authorization": f"Bearer {self.key}", "X-Request-ID": request_id,
                   **kwargs.pop("headers", {})}
        response = await self.client.request(method, f"/api/v1{path}", headers=headers,
                                             **kwargs)
        self.writes.append(Sent(method, route, request_id, response.status_code,
                                response.json() if response.content else None))
        return response

    async def read(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request_id = f"audit-read-{uuid.uuid4().hex}"
        self.reads.append(request_id)
        return await self.client.request(method, f"/api/v1{path}", headers={
            "Authorization": f"Bearer {self.key}", "X-Request-ID": request_id}, **kwargs)


async def test_every_write_leaves_one_audit_row_naming_its_actor(
    api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID
) -> None:
    key = await create_api_key(db_pool, tenant_id, "audit robot")
    call = Caller(api, key.key)
    nowhere = uuid.uuid4()

    # files, printers, mappings, stock: writes that succeed
    uploaded = await call.write("POST", "/print-files", "/print-files",
                                params={"filename": "a.gcode"},
                                content=GCODE + uuid.uuid4().hex.encode(),
                                headers={"Content-Type": "application/octet-stream"})
    assert uploaded.status_code == 201, uploaded.text
    printer = await call.write("POST", "/printers", "/printers", json={"name": "P1"})
    assert printer.status_code == 201, printer.text
    printer_id = printer.json()["id"]
    patched = await call.write("PATCH", f"/printers/{printer_id}", "/printers/{printer_id}",
                               json={"name": "P1b"})
    assert patched.status_code == 200, patched.text
    await call.write("POST", f"/printers/{printer_id}/disable",
                     "/printers/{printer_id}/disable")
    created = await call.write("POST", "/product-mappings", "/product-mappings",
                               json=mapping([uploaded.json()["id"]], sku="AUDIT-1"))
    assert created.status_code == 201, created.text
    mapping_id = created.json()["id"]
    deleted = await call.write("DELETE", f"/product-mappings/{mapping_id}",
                               "/product-mappings/{mapping_id}")
    assert deleted.status_code == 204, deleted.text
    stock = await call.write("PATCH", "/stock/settings", "/stock/settings",
                             json={"stock_cancelled_parts": "SCRAP"})
    assert stock.status_code == 200, stock.text
    # orders, shipments, print jobs, queue, GridFlock, inbound webhooks: refused writes
    for path, route in [
        (f"/orders/{nowhere}/cancel", "/orders/{order_id}/cancel"),
        (f"/orders/{nowhere}/ship", "/orders/{order_id}/ship"),
        (f"/print-jobs/{nowhere}/retry", "/print-jobs/{job_id}/retry"),
        (f"/print-jobs/{nowhere}/cancel", "/print-jobs/{job_id}/cancel"),
        (f"/gridflock/jobs/{nowhere}/retry", "/gridflock/jobs/{job_id}/retry"),
        ("/webhooks/dead-letters/987654321/retry", "/webhooks/dead-letters/{inbox_id}/retry"),
    ]:
        refused = await call.write("POST", path, route)
        assert refused.status_code in (404, 409, 422), (path, refused.text)
    invalid = await call.write("POST", "/printers", "/printers", json={"name": ""})
    assert invalid.status_code == 422
    # outgoing webhook subscriptions
    private = await call.write("POST", "/webhook-subscriptions", "/webhook-subscriptions",
                               json={"url": "https://10.1.2.3/hook", "event_types": ["*"]})
    assert private.status_code == 422
    subscription = await call.write("POST", "/webhook-subscriptions", "/webhook-subscriptions",
                                    json={"url": "https://93.184.216.34/hook",
                                          "event_types": ["order.created"]})
    assert subscription.status_code == 201, subscription.text
    secret = subscription.json()["secret"]
    subscription_id = subscription.json()["id"]
    route = "/webhook-subscriptions/{subscription_id}"
    await call.write("PATCH", f"/webhook-subscriptions/{subscription_id}", route,
                     json={"enabled": False})
    await call.write("DELETE", f"/webhook-subscriptions/{subscription_id}", route)

    # reads, including POSTs that only read, leave no row
    await call.read("GET", "/printers")
    await call.read("POST", "/printers/search", json={"filter": {"name": "P1b"}})
    await call.read("POST", "/gridflock/preview", json={"width_mm": 300, "depth_mm": 200})
    await call.read("GET", "/audit")

    rows = {r["request_id"]: dict(r.items()) for r in await db_pool.fetch(
        "SELECT * FROM audit_log WHERE tenant_id = $1", tenant_id)}
    assert len(rows) == len(call.writes), "one row per write, none for reads"
    assert not set(call.reads) & set(rows)
    for sent in call.writes:
        row = rows[sent.request_id]
        assert (row["method"], row["route"], row["status"]) == (
            sent.method, sent.route, sent.status), sent
        assert row["category"] == "write"
        assert row["action"] == f"{sent.method} {sent.route}"
        assert (row["actor_kind"], row["actor_id"], row["actor_name"]) == (
            "key", str(key.id), "audit robot")
        assert row["client_address"]

    by_route = {(s.method, s.route): rows[s.request_id] for s in call.writes}
    patch_row = by_route[("PATCH", "/printers/{printer_id}")]
    assert patch_row["target_id"] == printer_id
    assert patch_row["command"] == {"name": "P1b"}
    assert patch_row["before"]["name"] == "P1" and patch_row["after"]["name"] == "P1b"
    create_row = rows[call.writes[1].request_id]
    assert create_row["target_id"] == printer_id  # a creation names what it created
    sub_row = rows[subscription.request.headers["x-request-id"]]
    assert sub_row["after"]["secret"] == "[redacted]"
    assert secret not in json.dumps([dict(r) for r in rows.values()], default=str)
    assert rows[private.request.headers["x-request-id"]]["after"]["status"] == 422

    listed = await call.read("GET", "/audit", params={
        "route": "/printers/{printer_id}", "method": "PATCH"})
    assert listed.status_code == 200
    assert [r["request_id"] for r in listed.json()] == [patch_row["request_id"]]


async def test_the_trail_is_append_only_and_has_no_write_route(
    db_pool: Pool, tenant_id: uuid.UUID
) -> None:
    row_id = await audit.record(db_pool, AuditEntry(
        tenant_id=tenant_id, category="security", action="api_key.created",
        actor=Actor("user", "u1", "Ada"), target_id="k1",
        after={"name": "ci", "key": "f3d_plaintext"}))
    stored = await db_pool.fetchrow("SELECT * FROM audit_log WHERE id = $1", row_id)
    assert stored["after"] == {"name": "ci", "key": "[redacted]"}
    for statement in ("UPDATE audit_log SET action = 'x' WHERE id = $1",
                      "DELETE FROM audit_log WHERE id = $1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db_pool.execute(statement, row_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db_pool.execute("TRUNCATE audit_log")
    assert await db_pool.fetchval("SELECT action FROM audit_log WHERE id = $1",
                                  row_id) == "api_key.created"
    audit_routes = {(e.method, e.path) for e in router.endpoints if e.path.startswith("/audit")}
    assert audit_routes == {("GET", "/audit"), ("POST", "/audit/search")}
    assert all(e.permission == "audit.read" for e in router.endpoints
               if e.path.startswith("/audit"))


def test_the_actor_is_the_principal_when_one_is_set() -> None:
    from starlette.requests import Request

    from forma3d.http.audit import actor_of
    from forma3d.http.principal import Principal

    user, tenant = uuid.uuid4(), uuid.uuid4()
    for principal, expected in [
            (Principal(tenant, "user", user, "Ada"), Actor("user", str(user), "Ada")),
            (Principal(None, "platform", None, "platform"), Actor("platform", None, "platform"))]:
        request = Request({"type": "http", "state": {"principal": principal}, "headers": []})
        assert actor_of(request) == expected
    assert actor_of(Request({"type": "http", "state": {}, "headers": []})) == Actor("anonymous")
