"""Orders, print jobs, shipments and the event log over HTTP against real PostgreSQL, on rows
inserted directly (the entities that normally write them are not needed to read them)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from forma3d.db.pool import Pool
from forma3d.http.query import QuerySpec
from forma3d.http.routes.events import EVENTS, EventOut
from forma3d.http.routes.files import FILES, PrintFileOut
from forma3d.http.routes.mappings import MAPPINGS, PARTS, MappingOut, PartOut
from forma3d.http.routes.orders import LINE_ITEMS, ORDERS, LineItemOut, OrderOut
from forma3d.http.routes.print_jobs import PRINT_JOBS, PrintJobOut
from forma3d.http.routes.shipments import SHIPMENTS, ShipmentOut
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant

PROBLEM = "application/problem+json"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


@dataclass
class Farm:
    """One tenant's orders, jobs and shipments, made with SQL."""

    pool: Pool
    tenant_id: uuid.UUID
    file_id: uuid.UUID = field(default_factory=uuid.uuid4)
    orders: dict[str, uuid.UUID] = field(default_factory=dict)

    async def start(self) -> Farm:
        await self.pool.execute(
            "INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content)"
            " VALUES ($1, $2, 'p.gcode', $3, 2, 'G1')", self.file_id, self.tenant_id,
            uuid.uuid4().hex)
        return self

    async def order(self, name: str, status: str, *, minutes: int, email: str | None = None,
                    price: str = "19.90") -> uuid.UUID:
        order_id = uuid.uuid4()
        await self.pool.execute(
            """INSERT INTO orders (id, tenant_id, shopify_order_id, name, email, status,
                                   total_price, currency, shipping_address, created_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, 'EUR', $8, $9)""",
            order_id, self.tenant_id, 5_000_000_000 + len(self.orders), name, email, status,
            price, {"city": "Gent", "country_code": "BE"}, T0 + timedelta(minutes=minutes))
        self.orders[name] = order_id
        return order_id

    async def line_item(self, order_id: uuid.UUID, number: int, sku: str) -> uuid.UUID:
        item_id = uuid.uuid4()
        await self.pool.execute(
            "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, title,"
            " quantity, properties) VALUES ($1, $2, $3, $4, $5, 'Vase', 1, $6)",
            item_id, self.tenant_id, order_id, number, sku, {"colour": "red"})
        return item_id

    async def job(self, order_id: uuid.UUID | None, item_id: uuid.UUID | None, copy: int,
                  status: str, error: str | None = None,
                  tags: tuple[str, ...] = ("pla",)) -> uuid.UUID:
        job_id = uuid.uuid4()
        await self.pool.execute(
            """INSERT INTO print_jobs (id, tenant_id, job_key, purpose, order_id, line_item_id,
                                       copy_number, file_id, status, error, required_tags)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            job_id, self.tenant_id, f"k:{job_id}", "ORDER" if order_id else "STOCK", order_id,
            item_id, copy, self.file_id, status, error, list(tags))
        return job_id

    async def shipment(self, order_id: uuid.UUID, status: str, label: bytes | None,
                       tracking: str | None = None) -> uuid.UUID:
        shipment_id = uuid.uuid4()
        await self.pool.execute(
            """INSERT INTO shipments (id, tenant_id, order_id, status, external_reference,
                                      parcel_id, tracking_number, weight_kg, label)
               VALUES ($1, $2, $3, $4, $5, 77, $6, 0.250, $7)""",
            shipment_id, self.tenant_id, order_id, status, f"order-{order_id}", tracking, label)
        return shipment_id

    async def event(self, type_: str, subject_type: str, subject_id: str, minutes: int) -> None:
        await self.pool.execute(
            """INSERT INTO event_log (event_id, tenant_id, type, subject_type, subject_id,
                                      source, occurred_at, data)
               VALUES ($1, $2, $3, $4, $5, 'test', $6, $7)""",
            uuid.uuid4(), self.tenant_id, type_, subject_type, subject_id,
            T0 + timedelta(minutes=minutes), {"n": minutes})

    async def outbox(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT target_kind, target_key, message_type, payload, correlation_id FROM outbox"
            " WHERE tenant_id = $1 ORDER BY id", self.tenant_id)
        return [dict(r.items()) for r in rows]


@pytest.fixture
async def farm(db_pool: Pool, tenant_id: uuid.UUID) -> Farm:
    return await Farm(db_pool, tenant_id).start()


@pytest.fixture
async def stranger(db_pool: Pool) -> str:
    """Another tenant's API key."""
    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    return (await create_api_key(db_pool, other, "other")).key


@pytest.mark.parametrize(("model", "spec"), [
    (OrderOut, ORDERS), (LineItemOut, LINE_ITEMS), (PrintJobOut, PRINT_JOBS),
    (ShipmentOut, SHIPMENTS), (EventOut, EVENTS), (PrintFileOut, FILES),
    (PartOut, PARTS), (MappingOut, MAPPINGS),
])
def test_models_and_list_specs_agree(model: type[BaseModel], spec: QuerySpec) -> None:
    """A list row and a single object are the same shape (embedded relations aside)."""
    embedded = {"parts"} if model is MappingOut else set()
    assert set(model.model_fields) - embedded == set(spec.columns)


# --- orders -------------------------------------------------------------------------------------


@pytest.mark.db
async def test_order_list_filters_sorts_pages_and_searches_with_or(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    await farm.order("#1001", "PENDING", minutes=1, email="ann@example.com")
    await farm.order("#1002", "PROCESSING", minutes=2, email="bob@example.com", price="5.00")
    await farm.order("#1003", "FAILED", minutes=3)
    await farm.order("#2001", "FULFILLED", minutes=4, email="ann@example.com")
    h = auth(api_key)

    newest = await api.get("/api/v1/orders", headers=h)
    assert [o["name"] for o in newest.json()] == ["#2001", "#1003", "#1002", "#1001"]
    assert newest.json()[0]["created_at"] == "2026-03-01T12:04:00Z"
    assert newest.json()[0]["total_price"] == "19.90"
    assert newest.json()[0]["shipping_address"] == {"city": "Gent", "country_code": "BE"}

    page = await api.get("/api/v1/orders", headers=h, params={
        "email.endsWith": "@example.com", "sort": "name:asc", "limit": "2", "offset": "1",
        "meta": "true", "fields": "name,status"})
    assert page.json() == {"data": [
        {"id": str(farm.orders["#1002"]), "name": "#1002", "status": "PROCESSING"},
        {"id": str(farm.orders["#2001"]), "name": "#2001", "status": "FULFILLED"}],
        "total": 3, "limit": 2, "offset": 1}

    ranged = await api.get("/api/v1/orders", headers=h, params={
        "created_at.between": "2026-03-01T12:02:00Z,2026-03-01T13:03:00+01:00",
        "total_price.gte": "10", "status.in": "processing,failed"})
    assert [o["name"] for o in ranged.json()] == ["#1003"]

    found = await api.post("/api/v1/orders/search", headers=h, json={
        "filter": {"OR": [{"status": "FAILED"},
                          {"AND": [{"name": {"startsWith": "#10"}},
                                   {"email": {"contains": "BOB"}}]}]},
        "sort": [{"field": "created_at", "direction": "asc"}]})
    assert found.status_code == 200
    assert [o["name"] for o in found.json()] == ["#1002", "#1003"]

    bad = await api.get("/api/v1/orders", headers=h, params={
        "status": "LOST", "tenant_id": "x", "sort": "shipping_address"})
    assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM
    assert {e["field"] for e in bad.json()["errors"]} == {"status", "tenant_id", "sort"}
    bad_search = await api.post("/api/v1/orders/search", headers=h,
                                json={"filter": {"OR": []}, "where": 1})
    assert bad_search.status_code == 400
    assert {e["field"] for e in bad_search.json()["errors"]} == {"filter", "where"}
    everything = await api.post("/api/v1/orders/search", headers=h)  # no body: no filter
    assert len(everything.json()) == 4

    assert (await api.get("/api/v1/orders", headers=auth(stranger))).json() == []


@pytest.mark.db
async def test_order_detail_embeds_items_jobs_shipment_and_list_includes(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    order_id = await farm.order("#1001", "PROCESSING", minutes=1)
    bare = await farm.order("#1002", "PENDING", minutes=2)
    item = await farm.line_item(order_id, 1, "VASE-01")
    jobs = [await farm.job(order_id, item, copy, "QUEUED") for copy in (2, 1)]
    shipment_id = await farm.shipment(order_id, "LABEL_CREATED", PDF, "3S123")

    detail = await api.get(f"/api/v1/orders/{order_id}", headers=auth(api_key))
    assert detail.status_code == 200
    body = detail.json()
    assert [li["id"] for li in body["line_items"]] == [str(item)]
    assert body["line_items"][0]["properties"] == {"colour": "red"}
    assert [j["id"] for j in body["print_jobs"]] == [str(jobs[1]), str(jobs[0])]  # by copy
    assert body["print_jobs"][0]["required_tags"] == ["pla"]
    assert body["shipment"]["id"] == str(shipment_id) and body["shipment"]["has_label"] is True
    assert body["shipment"]["weight_kg"] == "0.250"
    assert "label" not in body["shipment"]

    empty = (await api.get(f"/api/v1/orders/{bare}", headers=auth(api_key))).json()
    assert empty["line_items"] == [] and empty["print_jobs"] == [] and empty["shipment"] is None

    listed = await api.get("/api/v1/orders", headers=auth(api_key),
                           params={"include": "shipment,line_items", "sort": "name"})
    rows = listed.json()
    assert rows[0]["shipment"] == body["shipment"] and rows[1]["shipment"] is None
    assert rows[0]["line_items"] == body["line_items"] and "print_jobs" not in rows[0]
    plain = {k: v for k, v in body.items() if k not in ("line_items", "print_jobs", "shipment")}
    assert {k: v for k, v in rows[0].items() if k in plain} == plain
    refused = await api.get("/api/v1/orders", headers=auth(api_key),
                            params={"include": "customer"})
    assert refused.status_code == 400

    for path in (f"/orders/{order_id}", f"/orders/{uuid.uuid4()}", "/orders/not-a-uuid"):
        denied = await api.get(f"/api/v1{path}", headers=auth(stranger))
        assert denied.status_code == 404 and denied.headers["content-type"] == PROBLEM


@pytest.mark.db
async def test_cancel_enqueues_for_the_order_entity_and_refuses_closed_orders(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    open_order = await farm.order("#1", "PROCESSING", minutes=1)
    done = await farm.order("#2", "FULFILLED", minutes=2)
    cancelled = await farm.order("#3", "CANCELLED", minutes=3)

    reason = {"reason": "customer called"}
    denied = await api.post(f"/api/v1/orders/{open_order}/cancel", headers=auth(stranger),
                            json=reason)
    assert denied.status_code == 404
    for closed, status in ((done, "FULFILLED"), (cancelled, "CANCELLED")):
        refused = await api.post(f"/api/v1/orders/{closed}/cancel", headers=auth(api_key),
                                 json=reason)
        assert refused.status_code == 409 and status in refused.json()["detail"]
    no_reason = await api.post(f"/api/v1/orders/{open_order}/cancel", headers=auth(api_key),
                               json={"reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    assert await farm.outbox() == []

    accepted = await api.post(f"/api/v1/orders/{open_order}/cancel", json=reason,
                              headers=auth(api_key, **{"X-Request-ID": "cancel-42"}))
    assert accepted.status_code == 202
    assert accepted.json()["id"] == str(open_order)
    # The order entity applies the cancel; a session-wide dispatcher may already have done so.
    assert accepted.json()["status"] in ("PROCESSING", "CANCELLED")
    assert await farm.outbox() == [{
        "target_kind": "order", "target_key": str(open_order), "message_type": "order.cancel",
        "payload": {"order_id": str(open_order), "reason": "customer called"},
        "correlation_id": "cancel-42"}]


# --- print jobs ---------------------------------------------------------------------------------


@pytest.mark.db
async def test_print_job_list_search_and_get(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    order_id = await farm.order("#1", "PROCESSING", minutes=1)
    item = await farm.line_item(order_id, 1, "VASE-01")
    failed = await farm.job(order_id, item, 1, "FAILED", error="spaghetti")
    printing = await farm.job(order_id, item, 2, "PRINTING")
    stock = await farm.job(None, None, 1, "QUEUED")
    await farm.job(order_id, item, 3, "COMPLETED")
    h = auth(api_key)

    active = await api.get("/api/v1/print-jobs", headers=h, params={
        "status.notIn": "COMPLETED,FAILED", "sort": "copy_number:asc,purpose:desc"})
    assert [j["id"] for j in active.json()] == [str(stock), str(printing)]
    stock_only = await api.get("/api/v1/print-jobs", headers=h,
                               params={"order_id.isNull": "true"})
    assert [j["id"] for j in stock_only.json()] == [str(stock)]

    found = await api.post("/api/v1/print-jobs/search", headers=h, json={
        "filter": {"order_id": str(order_id),
                   "OR": [{"error": {"contains": "spag"}}, {"copy_number": {"gte": 3}}]},
        "sort": "copy_number", "meta": True, "fields": ["status", "error"]})
    body = found.json()
    assert body["total"] == 2
    assert body["data"][0] == {"id": str(failed), "status": "FAILED", "error": "spaghetti"}
    assert body["data"][1]["status"] == "COMPLETED"

    one = await api.get(f"/api/v1/print-jobs/{failed}", headers=h)
    assert one.json()["error"] == "spaghetti" and one.json()["order_id"] == str(order_id)
    assert (await api.get(f"/api/v1/print-jobs/{failed}", headers=auth(stranger))
            ).status_code == 404


@pytest.mark.db
async def test_print_jobs_filter_on_required_tags_and_order_name_over_every_page(
    api: httpx.AsyncClient, api_key: str, farm: Farm, db_pool: Pool, tenant_id: uuid.UUID,
    stranger: str
) -> None:
    """The queue's facets are conditions in SQL: a match beyond the first page is found, the
    vocabulary is read like matching reads it (filament type/colour, any case, spaces)."""
    vase = await farm.order("#1001 Vase", "PROCESSING", minutes=1)
    other = await farm.order("#1002", "PROCESSING", minutes=2)
    mk4 = await farm.job(vase, None, 1, "QUEUED", tags=("model:MK4", "filament:PLA/Black"))
    petg = await farm.job(other, None, 1, "QUEUED", tags=(" Material: PETG ", "color:Red"))
    rush = await farm.job(None, None, 1, "QUEUED", tags=("Rush", "nozzle:0.6"))
    for copy in range(2, 8):  # later pages' worth of jobs matching nothing below
        await farm.job(other, None, copy, "QUEUED", tags=("model:XL",))
    h = auth(api_key)

    async def ids(**params: str) -> list[str]:
        page = await api.get("/api/v1/print-jobs", headers=h,
                             params={"sort": "created_at:desc", "limit": "2", **params})
        assert page.status_code == 200, page.text
        return [j["id"] for j in page.json()]

    assert await ids(required_tag="rush") == [str(rush)]  # the oldest: not on a first page
    assert await ids(**{"required_tag.in": "RUSH,filament:pla/black"}) == [str(rush), str(mk4)]
    assert await ids(model="mk4") == [str(mk4)]
    assert await ids(material="pla") == [str(mk4)]
    assert await ids(material="PETG") == [str(petg)]
    assert await ids(color="black") == [str(mk4)]
    assert await ids(color="red", material="petg") == [str(petg)]
    assert await ids(model="mk4", color="red") == []
    assert await ids(**{"order_name.contains": "vase"}) == [str(mk4)]
    assert await ids(order_name="#1001 vase") == [str(mk4)]
    assert await ids(**{"model.startsWith": "m", "status": "QUEUED"}) == [str(mk4)]

    found = await api.post("/api/v1/print-jobs/search", headers=h, json={
        "filter": {"OR": [{"model": "mk4"}, {"required_tag": "rush"}]}, "meta": True})
    assert {j["id"] for j in found.json()["data"]} == {str(mk4), str(rush)}

    # Filter-only: neither a row's field nor sortable; a set takes no negation.
    job = (await api.get(f"/api/v1/print-jobs/{mk4}", headers=h)).json()
    assert "model" not in job and "order_name" not in job
    for bad in ({"fields": "model"}, {"sort": "model"}, {"model.ne": "mk4"},
                {"required_tag.isNull": "true"}):
        refused = await api.get("/api/v1/print-jobs", headers=h, params=bad)
        assert refused.status_code == 400, bad
        assert refused.headers["content-type"] == PROBLEM

    # An order's name is the orders' to show: filtering on it needs orders.read.
    jobs_only = (await create_api_key(db_pool, tenant_id, "jobs",
                                      permissions=["print_jobs.read"])).key
    assert (await api.get("/api/v1/print-jobs", headers=auth(jobs_only),
                          params={"model": "mk4"})).status_code == 200
    for params in ({"order_name.contains": "vase"}, {"status": "QUEUED", "order_name": "x"}):
        refused = await api.get("/api/v1/print-jobs", headers=auth(jobs_only), params=params)
        assert refused.status_code == 403 and "orders.read" in refused.json()["detail"]
    assert (await api.post("/api/v1/print-jobs/search", headers=auth(jobs_only), json={
        "filter": {"OR": [{"model": "x"}, {"order_name": "x"}]}})).status_code == 403

    # The facets' choices: every distinct tag of the jobs the filter matches, in one call.
    tags = await api.get("/api/v1/print-jobs/required-tags", headers=h,
                         params={"status.in": "QUEUED,PENDING"})
    assert tags.json() == sorted({"model:MK4", "filament:PLA/Black", "Material: PETG",
                                  "color:Red", "Rush", "nozzle:0.6", "model:XL"})
    narrowed = await api.get("/api/v1/print-jobs/required-tags", headers=h,
                             params={"order_id": str(vase)})
    assert narrowed.json() == ["filament:PLA/Black", "model:MK4"]
    assert (await api.get("/api/v1/print-jobs/required-tags", headers=auth(stranger))
            ).json() == []
    bad = await api.get("/api/v1/print-jobs/required-tags", headers=h, params={"model.gt": "a"})
    assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM


@pytest.mark.db
async def test_retry_enqueues_for_the_order_only_when_failed_or_cancelled(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    order_id = await farm.order("#1", "FAILED", minutes=1)
    closed = await farm.order("#2", "CANCELLED", minutes=2)
    failed = await farm.job(order_id, None, 1, "FAILED")
    printing = await farm.job(order_id, None, 2, "PRINTING")
    of_closed = await farm.job(closed, None, 1, "CANCELLED")
    stock = await farm.job(None, None, 1, "FAILED")

    assert (await api.post(f"/api/v1/print-jobs/{failed}/retry", headers=auth(stranger))
            ).status_code == 404
    for job_id, words in ((printing, "PRINTING"), (of_closed, "CANCELLED order"),
                          (stock, "no order")):
        refused = await api.post(f"/api/v1/print-jobs/{job_id}/retry", headers=auth(api_key))
        assert refused.status_code == 409 and words in refused.json()["detail"]
    assert await farm.outbox() == []

    accepted = await api.post(f"/api/v1/print-jobs/{failed}/retry",
                              headers=auth(api_key, **{"X-Request-ID": "retry-7"}))
    assert accepted.status_code == 202 and accepted.json()["id"] == str(failed)
    assert await farm.outbox() == [{
        "target_kind": "order", "target_key": str(order_id), "message_type": "job.retry",
        "payload": {"order_id": str(order_id), "print_job_id": str(failed)},
        "correlation_id": "retry-7"}]


# --- shipments and events -----------------------------------------------------------------------


@pytest.mark.db
async def test_shipments_and_label_download(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    labelled = await farm.shipment(await farm.order("#1", "FULFILLED", minutes=1),
                                   "IN_TRANSIT", PDF, "3S\r\nX-Evil: 1")
    pending = await farm.shipment(await farm.order("#2", "READY_FOR_FULFILLMENT", minutes=2),
                                  "PENDING", None)
    h = auth(api_key)

    with_label = await api.get("/api/v1/shipments", headers=h, params={"has_label": "true"})
    assert [s["id"] for s in with_label.json()] == [str(labelled)]
    found = await api.post("/api/v1/shipments/search", headers=h, json={
        "filter": {"OR": [{"status": "pending"}, {"tracking_number": {"startsWith": "3S"}}]},
        "sort": "created_at:asc"})
    assert {s["id"] for s in found.json()} == {str(labelled), str(pending)}

    label = await api.get(f"/api/v1/shipments/{labelled}/label", headers=h)
    assert label.status_code == 200 and label.content == PDF
    assert label.headers["content-type"] == "application/pdf"
    assert label.headers["content-disposition"] == 'attachment; filename="label-3SX-Evil1.pdf"'
    missing = await api.get(f"/api/v1/shipments/{pending}/label", headers=h)
    assert missing.status_code == 404 and "no label" in missing.json()["detail"]
    for path in (f"/shipments/{labelled}", f"/shipments/{labelled}/label"):
        assert (await api.get(f"/api/v1{path}", headers=auth(stranger))).status_code == 404
    one = await api.get(f"/api/v1/shipments/{pending}", headers=h)
    assert one.json()["has_label"] is False and one.json()["status"] == "PENDING"


@pytest.mark.db
async def test_event_log_and_an_orders_timeline(
    api: httpx.AsyncClient, api_key: str, farm: Farm, stranger: str
) -> None:
    order_id = await farm.order("#1", "PROCESSING", minutes=0)
    other_order = await farm.order("#2", "PROCESSING", minutes=0)
    await farm.event("order.created", "order", str(order_id), 1)
    await farm.event("print-job.completed", "print_job", str(uuid.uuid4()), 2)
    await farm.event("order.ready-for-fulfillment", "order", str(order_id), 3)
    await farm.event("order.created", "order", str(other_order), 4)
    h = auth(api_key)

    latest = await api.get("/api/v1/events", headers=h, params={"type.startsWith": "order."})
    assert [e["occurred_at"] for e in latest.json()] == [
        "2026-03-01T12:04:00Z", "2026-03-01T12:03:00Z", "2026-03-01T12:01:00Z"]
    jobs = await api.post("/api/v1/events/search", headers=h, json={
        "filter": {"OR": [{"subject_type": "print_job"},
                          {"occurred_at": {"gt": "2026-03-01T12:03:30Z"}}]}})
    assert [e["type"] for e in jobs.json()] == ["order.created", "print-job.completed"]

    timeline = await api.get(f"/api/v1/orders/{order_id}/events", headers=h)
    assert [e["type"] for e in timeline.json()] == ["order.created",
                                                   "order.ready-for-fulfillment"]
    assert timeline.json()[0]["data"] == {"n": 1}
    narrowed = await api.post(f"/api/v1/orders/{order_id}/events/search", headers=h,
                              json={"filter": {"type": "order.created"}, "meta": True})
    assert narrowed.json()["total"] == 1
    # a client filter cannot widen the order's timeline to another subject
    widened = await api.get(f"/api/v1/orders/{order_id}/events", headers=h,
                            params={"subject_id": str(other_order)})
    assert widened.json() == []

    for key, order in ((stranger, order_id), (api_key, uuid.uuid4())):
        denied = await api.get(f"/api/v1/orders/{order}/events", headers=auth(key))
        assert denied.status_code == 404
    assert json.loads((await api.get("/api/v1/events", headers=auth(stranger))).text) == []
