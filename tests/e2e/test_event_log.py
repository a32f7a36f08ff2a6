"""Every status change has exactly one event: an order flow with a failed-and-retried print, a
cancellation and carrier updates, then every status change of every order, line item, print job
and shipment is compared with the status events in event_log, entity by entity, in order.

The ground truth does not come from our code: PostgreSQL triggers append every status a row is
inserted with or moved to into an audit table while the test runs.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest

from forma3d.db.pool import Pool
from tests.e2e.conftest import Farm
from tests.e2e.test_order_cancellation import wait_for
from tests.e2e.test_order_resilience import settle

pytestmark = pytest.mark.ray
TABLES = ("orders", "line_items", "print_jobs", "shipments")
STATUS_EVENTS = {  # event type -> (table, the data field naming the row)
    "order.status-changed": ("orders", "order_id"),
    "line-item.status-changed": ("line_items", "line_item_id"),
    "print-job.status-changed": ("print_jobs", "print_job_id"),
    "shipment.status-changed": ("shipments", "shipment_id"),
}
Changes = dict[tuple[str, str], list[tuple[str, str]]]


@pytest.fixture
async def audit(db_pool: Pool) -> AsyncIterator[None]:
    """Triggers recording (table, id, old, new) of every status insert and change, dropped after."""
    await db_pool.execute("""
        CREATE TABLE status_audit (seq bigserial PRIMARY KEY, tbl text NOT NULL,
                                   row_id uuid NOT NULL, tenant_id uuid NOT NULL,
                                   old_status text, new_status text NOT NULL);
        CREATE FUNCTION status_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.status IS NOT DISTINCT FROM NEW.status THEN
                RETURN NULL;
            END IF;
            INSERT INTO status_audit (tbl, row_id, tenant_id, old_status, new_status)
            VALUES (TG_TABLE_NAME, NEW.id, NEW.tenant_id,
                    CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status);
            RETURN NULL;
        END $$;""")
    for table in TABLES:
        await db_pool.execute(f"CREATE TRIGGER status_audit AFTER INSERT OR UPDATE OF status"
                              f" ON {table} FOR EACH ROW EXECUTE FUNCTION status_audit()")
    try:
        yield
    finally:
        for table in TABLES:
            await db_pool.execute(f"DROP TRIGGER IF EXISTS status_audit ON {table}")
        await db_pool.execute("DROP FUNCTION IF EXISTS status_audit() CASCADE;"
                              " DROP TABLE IF EXISTS status_audit")


async def history(pool: Pool, tenant_id: uuid.UUID) -> tuple[Changes, Changes, list[str]]:
    """(status changes the triggers saw, status changes the events tell, rows inserted in a
    status other than PENDING), read from one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        audited = await conn.fetch("SELECT * FROM status_audit WHERE tenant_id = $1 ORDER BY seq",
                                   tenant_id)
        logged = await conn.fetch("SELECT type, data FROM event_log WHERE tenant_id = $1"
                                  " AND type = ANY($2) ORDER BY id", tenant_id,
                                  list(STATUS_EVENTS))
    truth: Changes = defaultdict(list)
    odd_inserts = []
    for row in audited:
        if row["old_status"] is None:
            if row["new_status"] != "PENDING":
                odd_inserts.append(f"{row['tbl']} {row['row_id']} born {row['new_status']}")
            continue
        truth[row["tbl"], str(row["row_id"])].append((row["old_status"], row["new_status"]))
    told: Changes = defaultdict(list)
    for event in logged:
        table, key = STATUS_EVENTS[event["type"]]
        data = event["data"]
        told[table, data[key]].append((data["previous_status"], data["new_status"]))
    return truth, told, odd_inserts


async def test_every_status_change_has_exactly_one_event_in_order(
        farm: Farm, audit: None) -> None:
    await farm.pool.execute(
        "UPDATE tenants SET settings = settings || '{\"max_print_attempts\": 2}' WHERE id = $1",
        farm.tenant_id)

    # A print that fails on its first attempt (requeued) and its last (order FAILED)...
    await farm.control("simplyprint", "farm", {"failure_rate": 1.0})
    failing = farm.send_order([("BENCHY-PLA-RED", 1)])
    assert await farm.wait([failing], {"FAILED"}) == {failing: "FAILED"}
    await farm.control("simplyprint", "farm", {"failure_rate": 0.0})
    job = await farm.pool.fetchrow(
        "SELECT o.id AS order_id, j.id, j.attempts FROM orders o JOIN print_jobs j"
        " ON j.order_id = o.id WHERE o.tenant_id = $1 AND o.shopify_order_id = $2",
        farm.tenant_id, failing)
    assert job["attempts"] == 2
    # ...retried by an operator through the API, beside an order that goes through untroubled.
    retried = await farm.api("POST", f"/print-jobs/{job['id']}/retry")
    assert retried.status_code == 202, retried.text
    smooth = farm.send_order([("VASE-SPIRAL-PLA-WHITE", 1), ("PLANTER-HEX-PLA-GREEN", 1)])
    assert await farm.wait([failing, smooth], {"FULFILLED"}, timeout=180) == {
        failing: "FULFILLED", smooth: "FULFILLED"}

    # An order held for an unknown SKU while its other line item waits on the farm: cancelled.
    await farm.control("simplyprint", "farm", {"auto_print": False})
    cancelled = farm.send_order([("BENCHY-PLA-RED", 2), ("NO-SUCH-SKU", 1)])
    assert await farm.wait([cancelled], {"ON_HOLD"}) == {cancelled: "ON_HOLD"}
    await wait_for(farm, "SELECT count(*) = 2 FROM print_jobs j JOIN orders o ON o.id ="
                         " j.order_id WHERE o.shopify_order_id = $1 AND o.tenant_id = $2"
                         " AND j.farm_queue_item_id IS NOT NULL", cancelled, farm.tenant_id)
    farm.shopify.cancel_order(cancelled)
    assert await farm.wait([cancelled], {"CANCELLED"}) == {cancelled: "CANCELLED"}

    # The parcels travel to DELIVERED on the carrier's clock.
    await wait_for(farm, "SELECT bool_and(status = 'DELIVERED') FROM shipments"
                         " WHERE tenant_id = $1", farm.tenant_id)
    await settle(farm)

    truth, told, odd_inserts = await history(farm.pool, farm.tenant_id)
    assert odd_inserts == []
    missing = {k: v for k, v in truth.items() if told.get(k) != v}
    extra = {k: v for k, v in told.items() if truth.get(k) != v}
    assert missing == {} and extra == {}, f"status changes {missing} but events {extra}"
    seen = {(table, old, new) for (table, _), moves in truth.items() for old, new in moves}
    assert {("print_jobs", "FAILED", "QUEUED"), ("orders", "FAILED", "PROCESSING"),
            ("line_items", "FAILED", "PRINTING"), ("orders", "ON_HOLD", "CANCELLED"),
            ("line_items", "NEEDS_MAPPING", "CANCELLED"), ("print_jobs", "QUEUED", "CANCELLED"),
            ("orders", "READY_FOR_FULFILLMENT", "FULFILLED"),
            ("shipments", "IN_TRANSIT", "DELIVERED")} <= seen, sorted(seen)
