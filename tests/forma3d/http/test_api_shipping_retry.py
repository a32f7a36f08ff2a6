"""The operator's shipping retry over HTTP, asked of the in-process order entity: a FAILED
shipment restarts and a ShipOrder is queued; refusals are problem documents."""

from __future__ import annotations

import uuid

import httpx
import pytest

from forma3d.db.pool import Pool

pytestmark = pytest.mark.db
V1 = "/api/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
async def http(api: httpx.AsyncClient, api_key: str) -> httpx.AsyncClient:
    api.headers["Authorization"] = f"Bearer {api_key}"
    return api


async def order(pool: Pool, tenant_id: uuid.UUID, status: str,
                shipment: str | None = None) -> uuid.UUID:
    """Rows as the order flow leaves them (fixture data; the flow itself is tested elsewhere)."""
    order_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO orders (id, tenant_id, shopify_order_id, name, status) VALUES"
        " ($1, $2, $3, '#1001', $4)", order_id, tenant_id, uuid.uuid4().int % 10**12, status)
    if shipment is not None:
        await pool.execute(
            "INSERT INTO shipments (id, tenant_id, order_id, external_reference, status, error)"
            " VALUES ($1, $2, $3, $4, $5, 'Sendcloud refused the shipment')", uuid.uuid4(),
            tenant_id, order_id, f"forma3d-{order_id}", shipment)
    return order_id


async def test_retrying_a_failed_shipment_restarts_it_and_queues_the_shipping(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    order_id = await order(db_pool, tenant_id, "READY_FOR_FULFILLMENT", "FAILED")
    answer = await http.post(f"{V1}/orders/{order_id}/ship")
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "PENDING" and body["error"] is None and body["attempts"] == 1
    assert body["external_reference"] == f"forma3d-{order_id}-r1"
    queued = await db_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE tenant_id = $1 AND message_type = 'order.ship'"
        " AND target_key = $2", tenant_id, str(order_id))
    assert queued == 1
    event = await db_pool.fetchval(
        "SELECT data->>'reason' FROM event_log WHERE tenant_id = $1"
        " AND type = 'shipment.status-changed' ORDER BY id DESC LIMIT 1", tenant_id)
    assert event == "retried by operator"


async def test_retry_refusals_are_problems(http: httpx.AsyncClient, db_pool: Pool,
                                           tenant_id: uuid.UUID) -> None:
    processing = await order(db_pool, tenant_id, "PROCESSING")
    conflict = await http.post(f"{V1}/orders/{processing}/ship")
    assert conflict.status_code == 409 and conflict.headers["content-type"] == PROBLEM
    assert "PROCESSING" in conflict.json()["detail"]
    missing = await http.post(f"{V1}/orders/{uuid.uuid4()}/ship")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


async def test_a_shipment_shows_its_failure_and_its_label_url(
        http: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    failed = await order(db_pool, tenant_id, "READY_FOR_FULFILLMENT", "FAILED")
    [row] = (await http.get(f"{V1}/shipments", params={"order_id.eq": str(failed)})).json()
    assert row["status"] == "FAILED" and row["error"] == "Sendcloud refused the shipment"
    assert row["label_url"] is None

    labelled = await order(db_pool, tenant_id, "FULFILLED", "LABEL_CREATED")
    shipment_id = await db_pool.fetchval(
        "UPDATE shipments SET label = $2, parcel_id = 7, shipping_method = 'dpd:home',"
        " service_point_id = '10875349' WHERE order_id = $1 RETURNING id", labelled,
        b"%PDF-1.4 label")
    got = (await http.get(f"{V1}/shipments/{shipment_id}")).json()
    assert got["label_url"] == f"{V1}/shipments/{shipment_id}/label"
    assert got["shipping_method"] == "dpd:home" and got["service_point_id"] == "10875349"
    label = await http.get(got["label_url"])
    assert label.status_code == 200 and label.content == b"%PDF-1.4 label"
