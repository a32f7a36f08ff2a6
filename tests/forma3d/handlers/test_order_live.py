"""Orders as a live store sends them, through the order and tenant entities' handlers (no Ray)
against PostgreSQL and the in-process simulators: payment, voided payments, skipped line items,
operator holds and releases, edits before and after printing starts, partial and full refunds,
and manual orders. The Shopify simulator's admin controls make each change; the webhook bodies
it signs and sends are stored in the inbox and handled the way the entities handle them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.domain.orders.shopify_order import ShopifyOrder
from forma3d.handlers import catalog
from forma3d.handlers import order as handlers
from forma3d.handlers import tenant as tenant_handlers
from forma3d.handlers.order import Order
from forma3d.handlers.testing import stub_services
from forma3d.messaging.catalog import (
    CreateMapping,
    DeleteMapping,
    MappingDraft,
    PartDraft,
    ReplaceMapping,
)
from forma3d.messaging.order import (
    ApplyRefund,
    ApplyShopifyOrder,
    CancelOrder,
    HoldOrder,
    JobStatusReport,
    ReleaseOrder,
    ShipOrder,
    StartOrder,
    WithdrawJobs,
)
from forma3d.messaging.refusals import Conflict
from forma3d.messaging.tenant import (
    AddressDraft,
    CreateOrder,
    MappingChanged,
    OrderDraft,
    OrderLineDraft,
)
from forma3d.store import inbox, print_jobs
from forma3d.store import orders as store
from forma3d.store.shipments import get_shipment
from sandbox.server import serve_sandboxes
from sandbox.shopify import LineItemSpec, OrderSpec
from sandbox.tenant import save_credentials, seed_catalog
from tests.e2e.conftest import Farm, sandbox_config

pytestmark = pytest.mark.db


@pytest.fixture
async def shop(db_pool: Pool, tenant_id: uuid.UUID) -> AsyncIterator[Farm]:
    """A tenant on its own simulators, jobs placed in SimplyPrint's queue and left waiting
    (no auto print), so the test decides what starts."""
    config = sandbox_config(auto_print=False)
    config.sendcloud.status_interval = 10**7
    running = await serve_sandboxes(config)
    async with db_pool.acquire() as conn:
        parts = await seed_catalog(conn, tenant_id)
    await save_credentials(db_pool, tenant_id, running.urls, config)
    yield Farm(tenant_id, db_pool, running, parts)
    await running.stop()


@pytest.fixture
def sent(shop: Farm) -> list[tuple[str, bytes]]:
    """Every webhook the Shopify simulator sends, as (topic, the signed body)."""
    captured: list[tuple[str, bytes]] = []
    emit = shop.shopify.emit

    def record(topic: str, resource: dict[str, Any]) -> None:
        captured.append((topic, json.dumps(resource, separators=(",", ":")).encode()))
        emit(topic, resource)

    shop.shopify.emit = record
    return captured


def last(sent: list[tuple[str, bytes]], topic: str) -> bytes:
    return next(body for t, body in reversed(sent) if t == topic)


async def place(shop: Farm, lines: list[LineItemSpec], *,
                financial_status: str = "paid") -> tuple[Order, dict[str, Any]]:
    """An order placed at the simulator and stored as orders/create stores it."""
    raw = shop.shopify.create_order(OrderSpec(line_items=lines,
                                              financial_status=financial_status))
    async with shop.pool.acquire() as conn, conn.transaction():
        order_id, _ = await store.insert_order(conn, shop.tenant_id,
                                               ShopifyOrder.model_validate(raw))
    services, _ = stub_services(shop.pool)
    return await handlers.load(services, str(order_id)), raw


async def start(order: Order) -> int:
    return await handlers.start(order, StartOrder(tenant_id=order.tenant_id,
                                                  order_id=order.order_id))


async def deliver(order: Order, topic: str, body: bytes) -> str:
    """A stored delivery handled by the order entity (what the tenant forwards to it)."""
    async with order.pool.acquire() as conn, conn.transaction():
        inbox_id = await inbox.store(conn, order.tenant_id, "shopify", uuid.uuid4().hex, topic,
                                     {}, body)
        assert inbox_id is not None
        if topic == "refunds/create":
            answer: str = await handlers.refund(order, ApplyRefund(
                tenant_id=order.tenant_id, order_id=order.order_id, inbox_id=inbox_id), conn)
        else:
            answer = await handlers.shopify_changed(order, ApplyShopifyOrder(
                tenant_id=order.tenant_id, order_id=order.order_id, inbox_id=inbox_id), conn)
    return answer


async def command(order: Order, fn: Any, message: Any) -> Any:
    async with order.pool.acquire() as conn, conn.transaction():
        return await fn(order, message, conn)


async def order_row(order: Order) -> dict[str, Any]:
    return dict(await order.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order.order_id))


async def items(order: Order) -> list[dict[str, Any]]:
    return [dict(r) for r in await order.pool.fetch(
        "SELECT * FROM line_items WHERE order_id = $1 ORDER BY shopify_line_item_id",
        order.order_id)]


async def jobs(order: Order, sku: str | None = None) -> list[dict[str, Any]]:
    rows = await order.pool.fetch(
        "SELECT j.*, li.sku FROM print_jobs j JOIN line_items li ON li.id = j.line_item_id"
        " WHERE j.order_id = $1 ORDER BY j.job_key", order.order_id)
    return [dict(r) for r in rows if sku is None or r["sku"] == sku]


async def outbox(order: Order, message_type: str) -> list[dict[str, Any]]:
    rows = await order.pool.fetch(
        "SELECT payload FROM outbox WHERE tenant_id = $1 AND message_type = $2 ORDER BY id",
        order.tenant_id, message_type)
    return [dict(r["payload"]) for r in rows]


async def events(order: Order, *types: str) -> list[dict[str, Any]]:
    rows = await order.pool.fetch("SELECT type, data FROM event_log WHERE tenant_id = $1"
                                  " AND type = ANY($2) ORDER BY id", order.tenant_id, list(types))
    return [{"type": r["type"], **r["data"]} for r in rows]


async def report(order: Order, job: dict[str, Any], status: str) -> str:
    answer: str = await command(order, handlers.job_status, JobStatusReport(
        tenant_id=order.tenant_id, order_id=order.order_id, print_job_id=job["id"],
        status=status, queue_item_id=job["farm_queue_item_id"]))
    return answer


async def settings(shop: Farm, **values: Any) -> None:
    await shop.pool.execute("UPDATE tenants SET settings = settings || $2::jsonb WHERE id = $1",
                            shop.tenant_id, values)


# --- payment ----------------------------------------------------------------------------------


async def test_a_pending_order_waits_for_payment_and_orders_paid_releases_it(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED", quantity=2)],
                             financial_status="pending")
    assert await start(order) == 0
    row = await order_row(order)
    assert (row["status"], row["reason"]) == (
        "AWAITING_PAYMENT", "awaiting payment (financial_status pending)")
    assert await jobs(order) == []
    assert shop.sandboxes.sandboxes.simplyprint.farm.open_items() == []

    shop.shopify.set_financial_status(raw["id"], "paid")
    assert [t for t, _ in sent[-2:]] == ["orders/paid", "orders/updated"]
    assert await deliver(order, "orders/paid", last(sent, "orders/paid")) == "paid"
    assert await deliver(order, "orders/updated", last(sent, "orders/updated")) == "stale"
    row = await order_row(order)
    assert (row["status"], row["financial_status"]) == ("PENDING", "paid")
    assert [m["order_id"] for m in await outbox(order, "order.start")] == [str(order.order_id)]
    [paid] = await events(order, "order.paid")
    assert (paid["financial_status"], paid["released"]) == ("paid", True)

    assert await start(order) == 2
    assert {j["status"] for j in await jobs(order)} == {"QUEUED"}
    assert (await order_row(order))["status"] == "PROCESSING"


async def test_an_authorized_order_prints_only_where_the_tenant_says_so(shop: Farm) -> None:
    waiting, _ = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")],
                             financial_status="authorized")
    assert await start(waiting) == 0
    assert (await order_row(waiting))["status"] == "AWAITING_PAYMENT"

    await settings(shop, print_authorized_orders=True)
    printing, _ = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")],
                              financial_status="authorized")
    assert await start(printing) == 1
    assert (await order_row(printing))["status"] == "PROCESSING"


async def test_a_voided_payment_cancels_the_waiting_order(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")],
                             financial_status="pending")
    await start(order)
    shop.shopify.set_financial_status(raw["id"], "voided")
    assert await deliver(order, "orders/updated", last(sent, "orders/updated")) == "voided"
    [cancel] = await outbox(order, "order.cancel")
    assert cancel["reason"] == "payment voided"
    assert await handlers.cancel(order, CancelOrder.model_validate(
        cancel | {"tenant_id": order.tenant_id})) == "cancelled"
    row = await order_row(order)
    assert (row["status"], row["reason"]) == ("CANCELLED", "payment voided")
    assert [i["status"] for i in await items(order)] == ["CANCELLED"]


# --- not everything is a print ------------------------------------------------------------------


async def test_non_shipping_and_ignored_items_are_skipped_and_never_hold_the_order(
        shop: Farm) -> None:
    await settings(shop, ignored_sku_patterns=["shipping-protection*", "TIP"])
    order, _ = await place(shop, [
        LineItemSpec(sku="BENCHY-PLA-RED"),
        LineItemSpec(sku="GIFT-CARD-25", requires_shipping=False),
        LineItemSpec(sku="SHIPPING-PROTECTION-EU")])
    assert await start(order) == 1
    found = await items(order)
    assert [(i["sku"], i["status"]) for i in found] == [
        ("BENCHY-PLA-RED", "PRINTING"), ("GIFT-CARD-25", "SKIPPED"),
        ("SHIPPING-PROTECTION-EU", "SKIPPED")]
    assert found[1]["reason"] == "not a print: the item needs no shipping"
    assert "'shipping-protection*'" in found[2]["reason"]
    assert (await order_row(order))["status"] == "PROCESSING"  # not ON_HOLD
    skipped = await events(order, "line-item.skipped")
    assert [e["sku"] for e in skipped] == ["GIFT-CARD-25", "SHIPPING-PROTECTION-EU"]

    [job] = await jobs(order)
    assert await report(order, job, "COMPLETED") == "applied"
    row = await order_row(order)
    assert (row["status"], row["parts_total"], row["parts_completed"]) == (
        "READY_FOR_FULFILLMENT", 1, 1)


# --- holds --------------------------------------------------------------------------------------


async def test_an_operator_holds_and_releases_an_order_against_todays_mappings(
        shop: Farm) -> None:
    order, _ = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED"),
                                  LineItemSpec(sku="KEYCHAIN-NEW")])
    await start(order)
    assert (await order_row(order))["status"] == "ON_HOLD"  # no mapping for KEYCHAIN-NEW yet
    hold = HoldOrder(tenant_id=order.tenant_id, order_id=order.order_id,
                     reason="address to be confirmed", by="ops")
    assert await command(order, handlers.hold, hold) == "ON_HOLD"
    row = await order_row(order)
    assert (row["hold_reason"], row["reason"]) == ("address to be confirmed",) * 2
    with pytest.raises(Conflict, match="held already"):
        await command(order, handlers.hold, hold)
    # While held nothing more of it starts: smart dispatch offers none of its jobs to a printer.
    [benchy] = await jobs(order)
    await shop.pool.execute("UPDATE print_jobs SET farm_queue_item_id = NULL WHERE id = $1",
                            benchy["id"])

    async def offered() -> list[Any]:
        rows = await shop.pool.fetch(print_jobs.CANDIDATES, shop.tenant_id, 200, 0)
        return [r["id"] for r in rows]

    assert benchy["id"] not in await offered()

    # The mapping arrives; releasing expands the held line item against it.
    await shop.pool.execute(
        "UPDATE product_mappings SET sku = 'KEYCHAIN-NEW' WHERE tenant_id = $1"
        " AND sku = 'GRID-BIN-2X3-PETG-BLACK'", shop.tenant_id)
    release = ReleaseOrder(tenant_id=order.tenant_id, order_id=order.order_id, by="ops")
    assert await command(order, handlers.release, release) == "ON_HOLD"  # until expanded
    assert (await order_row(order))["hold_reason"] is None
    assert len(await outbox(order, "order.start")) == 1
    assert benchy["id"] in await offered()
    assert await start(order) == 2  # the new line's job, and the Benchy taken off the queue
    assert [i["status"] for i in await items(order)] == ["PRINTING", "PRINTING"]
    assert (await order_row(order))["status"] == "PROCESSING"
    logged = await events(order, "order.held", "order.released")
    assert [(e["type"], e["by"]) for e in logged] == [("order.held", "ops"),
                                                       ("order.released", "ops")]
    assert logged[1]["hold_reason"] == "address to be confirmed"
    with pytest.raises(Conflict, match="only a held order"):
        await command(order, handlers.release, release)


async def test_releasing_an_unpaid_held_order_returns_it_to_awaiting_payment(
        shop: Farm) -> None:
    order, _ = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")],
                           financial_status="pending")
    await start(order)
    await command(order, handlers.hold, HoldOrder(tenant_id=order.tenant_id,
                                                  order_id=order.order_id, reason="fraud check"))
    assert (await order_row(order))["status"] == "ON_HOLD"
    assert await command(order, handlers.release, ReleaseOrder(
        tenant_id=order.tenant_id, order_id=order.order_id)) == "AWAITING_PAYMENT"


# --- edits --------------------------------------------------------------------------------------


async def test_an_edit_before_printing_changes_the_jobs_that_have_not_started(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED", quantity=2),
                                    LineItemSpec(sku="VASE-SPIRAL-PLA-WHITE")])
    assert await start(order) == 4
    farm = shop.sandboxes.sandboxes.simplyprint.farm
    assert len(farm.open_items()) == 4
    benchy, vase = raw["line_items"]
    shop.shopify.edit_order(raw["id"], {benchy["id"]: 1, vase["id"]: 0},
                            add=[LineItemSpec(sku="GRID-BIN-2X3-PETG-BLACK", quantity=2)])
    assert await deliver(order, "orders/updated", last(sent, "orders/updated")) == "edited"

    found = await items(order)
    assert [(i["sku"], i["status"], i["quantity"]) for i in found] == [
        ("BENCHY-PLA-RED", "PRINTING", 1), ("VASE-SPIRAL-PLA-WHITE", "CANCELLED", 1),
        ("GRID-BIN-2X3-PETG-BLACK", "PENDING", 2)]
    assert [(j["copy_number"], j["status"], j["withdrawn"])
            for j in await jobs(order, "BENCHY-PLA-RED")] == [
        (1, "QUEUED", False), (2, "CANCELLED", True)]
    assert {(j["status"], j["withdrawn"]) for j in await jobs(order, "VASE-SPIRAL-PLA-WHITE")} \
        == {("CANCELLED", True)}
    row = await order_row(order)
    assert (row["status"], row["parts_total"], row["hold_reason"]) == ("PROCESSING", 1, None)
    [edited] = await events(order, "order.edited")
    assert edited["held"] is False
    assert [(c["sku"], c["change"], c["before"], c["after"], c["applied"])
            for c in edited["changes"]] == [
        ("BENCHY-PLA-RED", "changed", 2, 1, True),
        ("VASE-SPIRAL-PLA-WHITE", "removed", 1, 0, True),
        ("GRID-BIN-2X3-PETG-BLACK", "added", 0, 2, True)]

    [withdraw] = await outbox(order, "order.withdraw_jobs")
    assert len(withdraw["print_job_ids"]) == 3
    assert await handlers.withdraw_jobs(order, WithdrawJobs.model_validate(
        withdraw | {"tenant_id": order.tenant_id})) == 3
    assert len(farm.open_items()) == 1  # the one Benchy left
    assert len(await outbox(order, "order.start")) == 1
    assert await start(order) == 2  # the added bins
    assert len(farm.open_items()) == 3
    assert (await order_row(order))["parts_total"] == 3


async def test_an_edit_after_printing_starts_is_recorded_and_holds_the_order(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED", quantity=2)])
    await start(order)
    for job in await jobs(order):
        assert await report(order, job, "PRINTING") == "applied"
    [benchy] = raw["line_items"]
    shop.shopify.edit_order(raw["id"], {benchy["id"]: 1})
    assert await deliver(order, "orders/updated", last(sent, "orders/updated")) == "held"

    row = await order_row(order)
    assert row["status"] == "ON_HOLD"
    assert row["hold_reason"].startswith("edited in Shopify after printing has started: "
                                         "BENCHY-PLA-RED 2 -> 1")
    assert row["reason"] == row["hold_reason"]
    assert [j["status"] for j in await jobs(order)] == ["PRINTING", "PRINTING"]  # untouched
    [edited] = await events(order, "order.edited")
    assert edited["held"] is True and edited["changes"][0]["applied"] is False
    [held] = await events(order, "order.held")
    assert held["by"] == "shopify"
    # The operator looks and releases it; its prints carry on.
    assert await command(order, handlers.release, ReleaseOrder(
        tenant_id=order.tenant_id, order_id=order.order_id)) == "PROCESSING"


# --- mappings that vanish while an order waits ---------------------------------------------------


async def mapping_draft(shop: Farm, of: str, **change: Any) -> tuple[uuid.UUID, MappingDraft]:
    """The SKU's mapping as an operator would send it back (its parts kept by id)."""
    mapping_id = await shop.pool.fetchval(
        "SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = $2", shop.tenant_id, of)
    parts = await shop.pool.fetch(
        "SELECT id, name, file_id, quantity, grams FROM mapping_parts WHERE mapping_id = $1"
        " ORDER BY position", mapping_id)
    return mapping_id, MappingDraft(sku=of, name=of, parts=[
        PartDraft(id=p["id"], name=p["name"], file_id=p["file_id"], quantity=p["quantity"],
                  grams=p["grams"]) for p in parts]).model_copy(update=change)


async def as_tenant(tenant: Any, fn: Any, message: Any) -> Any:
    """A tenant command run as its host runs it: in one transaction."""
    async with tenant.services.pool.acquire() as conn, conn.transaction():
        return await fn(tenant, message, conn)


async def test_a_mapping_deleted_while_its_order_waits_holds_it_visibly_until_one_is_made(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")],
                             financial_status="pending")
    assert await start(order) == 0
    assert (await order_row(order))["status"] == "AWAITING_PAYMENT"
    tenant = await tenant_handlers.load(stub_services(shop.pool)[0], str(shop.tenant_id))
    mapping_id, draft = await mapping_draft(shop, "BENCHY-PLA-RED")
    await as_tenant(tenant, catalog.delete_mapping,  # not used by any expanded order yet
                  DeleteMapping(tenant_id=shop.tenant_id, mapping_id=mapping_id))

    shop.shopify.set_financial_status(raw["id"], "paid")
    assert await deliver(order, "orders/paid", last(sent, "orders/paid")) == "paid"
    assert await start(order) == 0
    [item] = await items(order)
    assert item["status"] == "NEEDS_MAPPING"
    assert item["reason"] == ("no product mapping for SKU 'BENCHY-PLA-RED': create one"
                              " (POST /api/v1/product-mappings) and the order resumes by itself")
    row = await order_row(order)
    assert row["status"] == "ON_HOLD" and "BENCHY-PLA-RED" in row["reason"]
    assert "POST /api/v1/product-mappings" in row["reason"]
    changes = await events(order, "line-item.status-changed", "order.status-changed")
    assert [(e["new_status"], e["reason"]) for e in changes][-2:] == [
        ("NEEDS_MAPPING", item["reason"]), ("ON_HOLD", row["reason"])]

    # The operator's action: a mapping for the SKU; the tenant resumes the order by itself.
    await as_tenant(tenant, catalog.create_mapping, CreateMapping(
        tenant_id=shop.tenant_id, mapping=draft.model_copy(update={"parts": [
            p.model_copy(update={"id": None}) for p in draft.parts]})))
    [announced] = [r for r in await shop.pool.fetch(
        "SELECT payload FROM outbox WHERE tenant_id = $1 AND message_type = 'mapping.changed'",
        shop.tenant_id)]
    changed = MappingChanged.model_validate(dict(announced["payload"])
                                            | {"tenant_id": shop.tenant_id})
    assert await as_tenant(tenant, tenant_handlers.mapping_changed, changed) == 1
    assert [m["order_id"] for m in await outbox(order, "order.start")][-1] == str(order.order_id)
    assert await start(order) == 1
    assert [i["status"] for i in await items(order)] == ["PRINTING"]
    assert (await order_row(order))["status"] == "PROCESSING"


async def test_more_units_of_a_line_whose_mapping_sku_changed_are_made_of_the_same_parts(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")])
    assert await start(order) == 1
    tenant = await tenant_handlers.load(stub_services(shop.pool)[0], str(shop.tenant_id))
    mapping_id, draft = await mapping_draft(shop, "BENCHY-PLA-RED", sku="BENCHY-V2")
    await as_tenant(tenant, catalog.replace_mapping, ReplaceMapping(
        tenant_id=shop.tenant_id, mapping_id=mapping_id, mapping=draft))

    [benchy] = raw["line_items"]
    shop.shopify.edit_order(raw["id"], {benchy["id"]: 2})
    assert await deliver(order, "orders/updated", last(sent, "orders/updated")) == "edited"
    assert [(j["copy_number"], j["part_id"]) for j in await jobs(order)] == [
        (1, draft.parts[0].id), (2, draft.parts[0].id)]
    assert await start(order) == 1  # the added copy goes to the farm
    row = await order_row(order)
    assert (row["status"], row["hold_reason"], row["parts_total"]) == ("PROCESSING", None, 2)

    # A new order for the old SKU now waits for a mapping, visibly.
    later, _ = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")])
    assert await start(later) == 0
    assert (await order_row(later))["status"] == "ON_HOLD"
    assert [i["status"] for i in await items(later)] == ["NEEDS_MAPPING"]


# --- refunds ------------------------------------------------------------------------------------


async def test_a_partial_refund_cancels_the_refunded_units_unstarted_jobs(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED", quantity=3),
                                    LineItemSpec(sku="VASE-SPIRAL-PLA-WHITE")])
    await start(order)
    first = (await jobs(order, "BENCHY-PLA-RED"))[0]
    assert await report(order, first, "PRINTING") == "applied"
    benchy, _ = raw["line_items"]
    shop.shopify.refund(raw["id"], {benchy["id"]: 2})
    refund = last(sent, "refunds/create")
    assert await deliver(order, "refunds/create", refund) == "refunded"
    assert await deliver(order, "refunds/create", refund) == "already applied"
    # Shopify's orders/updated that follows (current_quantity 1) changes nothing more.
    assert await deliver(order, "orders/updated", last(sent, "orders/updated")) == "updated"

    assert [(j["copy_number"], j["status"], j["withdrawn"])
            for j in await jobs(order, "BENCHY-PLA-RED")] == [
        (1, "PRINTING", False), (2, "CANCELLED", True), (3, "CANCELLED", True)]
    found = await items(order)
    assert [(i["quantity"], i["refunded_quantity"], i["status"]) for i in found] == [
        (1, 2, "PRINTING"), (1, 0, "PRINTING")]
    row = await order_row(order)
    assert (row["status"], row["parts_total"]) == ("PROCESSING", 3)
    [refunded] = await events(order, "order.refunded")
    assert (refunded["full"], refunded["lines"]) == (False, [
        {"shopify_line_item_id": str(benchy["id"]), "quantity": 2, "jobs_withdrawn": 2}])
    assert await outbox(order, "order.cancel") == []


async def test_a_refund_of_a_unit_already_printing_holds_the_order(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED", quantity=2),
                                    LineItemSpec(sku="VASE-SPIRAL-PLA-WHITE")])
    await start(order)
    for started in await jobs(order, "BENCHY-PLA-RED"):
        assert await report(order, started, "PRINTING") == "applied"
    shop.shopify.refund(raw["id"], {raw["line_items"][0]["id"]: 1})
    assert await deliver(order, "refunds/create", last(sent, "refunds/create")) == "held"
    row = await order_row(order)
    assert row["status"] == "ON_HOLD"
    assert row["hold_reason"].startswith("refunded after printing has started: "
                                         "BENCHY-PLA-RED 2 -> 1")
    assert [j["status"] for j in await jobs(order, "BENCHY-PLA-RED")] == ["PRINTING"] * 2


async def test_a_full_refund_cancels_the_order_like_orders_cancelled(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED", quantity=2),
                                    LineItemSpec(sku="GIFT-WRAP", requires_shipping=False)])
    await start(order)
    benchy, _ = raw["line_items"]
    shop.shopify.refund(raw["id"], {benchy["id"]: 2})
    assert await deliver(order, "refunds/create", last(sent, "refunds/create")) == "cancelling"
    [cancel] = await outbox(order, "order.cancel")
    assert cancel["reason"] == "refunded in full"
    [refunded] = await events(order, "order.refunded")
    assert refunded["full"] is True
    assert await handlers.cancel(order, CancelOrder.model_validate(
        cancel | {"tenant_id": order.tenant_id})) == "cancelled"
    assert shop.sandboxes.sandboxes.simplyprint.farm.open_items() == []
    assert (await order_row(order))["status"] == "CANCELLED"


# --- the tenant routes live topics to the order -------------------------------------------------


async def test_the_tenant_hands_paid_updates_and_refunds_to_the_order(
        shop: Farm, sent: list[tuple[str, bytes]]) -> None:
    order, raw = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")],
                             financial_status="pending")
    shop.shopify.set_financial_status(raw["id"], "paid")
    shop.shopify.refund(raw["id"], {raw["line_items"][0]["id"]: 1})
    services, _ = stub_services(shop.pool)
    tenant = tenant_handlers.Tenant(services, shop.tenant_id, {})
    answers = []
    for index, (topic, body) in enumerate(sent[1:]):
        async with shop.pool.acquire() as conn, conn.transaction():
            inbox_id = await inbox.store(conn, shop.tenant_id, "shopify", f"d{index}", topic,
                                         {}, body)
            assert inbox_id is not None
            answers.append(await tenant_handlers.shopify_webhook(
                tenant, tenant_handlers.ShopifyWebhook(tenant_id=shop.tenant_id,
                                                       inbox_id=inbox_id), conn))
    assert [t for t, _ in sent[1:]] == ["orders/paid", "orders/updated", "refunds/create",
                                        "orders/updated"]
    assert answers == ["known", "known", "refund", "known"]
    assert len(await outbox(order, "order.shopify_changed")) == 3
    [refund] = await outbox(order, "order.refund")
    assert refund["order_id"] == str(order.order_id)


# --- manual orders ------------------------------------------------------------------------------


async def test_a_manual_order_prints_and_ships_by_sendcloud_without_shopify(
        shop: Farm) -> None:
    services, _ = stub_services(shop.pool)
    tenant = tenant_handlers.Tenant(services, shop.tenant_id, {})
    draft = OrderDraft(reference="fair-0042", email="jane@example.com",
                       shipping_address=AddressDraft(
                           name="Jane Smith", address1="Stadhuisplein 10", city="Eindhoven",
                           zip="5611 EM", country_code="NL"),
                       line_items=[OrderLineDraft(sku="BENCHY-PLA-RED", quantity=2)])
    message = CreateOrder(tenant_id=shop.tenant_id, draft=draft)
    async with shop.pool.acquire() as conn, conn.transaction():
        made = await tenant_handlers.create_order(tenant, message, conn)
    async with shop.pool.acquire() as conn, conn.transaction():
        again = await tenant_handlers.create_order(tenant, message, conn)
    assert made["created"] is True and again == {**made, "created": False}
    order = await handlers.load(services, made["order_id"])
    row = await order_row(order)
    assert (row["source"], row["reference"], row["shopify_order_id"], row["name"]) == (
        "manual", "fair-0042", None, "fair-0042")
    assert len(await outbox(order, "order.start")) == 1

    assert await start(order) == 2
    for job in await jobs(order):
        assert await report(order, job, "COMPLETED") == "applied"
    assert await handlers.ship(order, ShipOrder(tenant_id=order.tenant_id,
                                                order_id=order.order_id)) == "fulfilled"
    row = await order_row(order)
    assert row["status"] == "FULFILLED"
    shipment = await get_shipment(order.pool, order.tenant_id, order.order_id)
    assert shipment is not None and shipment.tracking_number
    assert shipment.shopify_fulfillment_id is None
    assert shop.shopify.fulfillments == {}  # nothing went to Shopify
    [fulfilled] = await events(order, "order.fulfilled")
    assert fulfilled["shopify_order_id"] is None


# --- SimplyPrint's own queue --------------------------------------------------------------------


async def test_simplyprint_queue_mode_passes_the_jobs_models_and_tags_to_additem(
        shop: Farm) -> None:
    await shop.pool.execute(
        "UPDATE mapping_parts SET required_tags = $2 WHERE tenant_id = $1 AND mapping_id ="
        " (SELECT id FROM product_mappings WHERE tenant_id = $1 AND sku = 'BENCHY-PLA-RED')",
        shop.tenant_id, ["model:Original Prusa MK4", "nozzle:0.40", "filament:PLA/Red"])
    order, _ = await place(shop, [LineItemSpec(sku="BENCHY-PLA-RED")])
    assert await start(order) == 1
    [item] = shop.sandboxes.sandboxes.simplyprint.farm.open_items()
    assert item.for_models == [10]  # the simulator's id of the Original Prusa MK4
    assert item.tags == {"nozzle": 0.4, "material": [{"ext": 0, "type": "PLA",
                                                      "color": "Red"}]}
