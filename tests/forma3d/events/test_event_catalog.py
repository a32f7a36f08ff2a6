from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from forma3d.domain.events import (
    Event,
    EventType,
    OrderCreated,
    PrintJobFailed,
    ShipmentStatusChanged,
    UnknownEventType,
    UnknownEventVersion,
    make_event,
    parse_event,
    registered_events,
    spec_for,
)
from forma3d.domain.printing.states import JobPurpose
from forma3d.domain.shipping.states import ShipmentStatus

ORDER_DATA: dict[str, Any] = {
    "order_id": "o1",
    "shopify_order_id": "820982911946154508",
    "order_number": "#1001",
    "line_items": [{"line_item_id": "li1", "sku": "LAMP", "quantity": 2}],
}


def test_every_catalog_event_is_registered() -> None:
    assert {s.name for s in registered_events()} == {t.value for t in EventType}
    assert spec_for("stock.replenishment-scheduled").version == "0.0.2"
    assert spec_for("order.created").model is OrderCreated


def test_make_event_validates_and_fills_the_envelope() -> None:
    event = make_event(EventType.ORDER_CREATED, "tenant-1", ORDER_DATA, source="webhook")
    assert isinstance(event.data, OrderCreated)
    assert event.data.line_items[0].quantity == 2
    assert event.version == "0.0.1"
    assert event.occurred_at.tzinfo is UTC
    assert event.correlation_id == str(event.event_id)
    assert event.source == "webhook"


def test_correlation_id_is_passed_on() -> None:
    event = make_event("order.cancelled", "t", {"order_id": "o1"}, correlation_id="req-42")
    assert event.correlation_id == "req-42"


def test_invalid_payload_is_rejected_at_creation() -> None:
    with pytest.raises(ValidationError, match="quantity"):
        make_event(
            "order.created",
            "t",
            {**ORDER_DATA, "line_items": [{"line_item_id": "li1", "sku": "LAMP", "quantity": 0}]},
        )
    with pytest.raises(ValidationError, match="extra"):
        make_event("order.cancelled", "t", {"order_id": "o1", "surprise": 1})


def test_payload_model_must_match_the_type() -> None:
    with pytest.raises(ValidationError, match="carries OrderCancelled, not OrderCreated"):
        make_event("order.cancelled", "t", OrderCreated.model_validate(ORDER_DATA))


def test_unknown_type_and_version_are_clear_errors() -> None:
    with pytest.raises(
        UnknownEventType, match=r"unknown event type 'order\.exploded'.*order\.created"
    ):
        make_event("order.exploded", "t", {})
    with pytest.raises(UnknownEventVersion, match=re.escape("no version '9.9.9' (known: 0.0.1)")):
        make_event("order.created", "t", ORDER_DATA, version="9.9.9")


def test_json_round_trip_keeps_the_payload_type() -> None:
    event = make_event("order.created", "t", ORDER_DATA)
    wire = json.loads(event.model_dump_json())
    assert wire["data"]["line_items"][0]["sku"] == "LAMP"
    assert wire["occurred_at"].endswith("Z")
    parsed = parse_event(wire)
    assert parsed == event
    assert isinstance(parsed.data, OrderCreated)


def test_parse_rejects_unknown_type_missing_version_and_bad_data() -> None:
    wire = json.loads(make_event("order.created", "t", ORDER_DATA).model_dump_json())
    with pytest.raises(UnknownEventType):
        parse_event({**wire, "type": "nope"})
    with pytest.raises(UnknownEventType):
        parse_event({k: v for k, v in wire.items() if k != "type"})
    with pytest.raises(ValueError, match="no version"):
        parse_event({k: v for k, v in wire.items() if k != "version"})
    with pytest.raises(ValidationError):
        parse_event({**wire, "data": {"order_id": "o1"}})


def test_occurred_at_must_be_aware_and_is_stored_in_utc() -> None:
    cet = timezone(timedelta(hours=1))
    event = make_event(
        "order.cancelled",
        "t",
        {"order_id": "o"},
        occurred_at=datetime(2026, 1, 1, 13, 0, tzinfo=cet),
    )
    assert event.occurred_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert event.occurred_at.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="timezone"):
        make_event("order.cancelled", "t", {"order_id": "o"}, occurred_at=datetime(2026, 1, 1))


def test_print_job_events_need_their_owner() -> None:
    with pytest.raises(ValidationError, match="needs order_id"):
        PrintJobFailed(print_job_id="j1", error_message="nozzle clog")
    stock = PrintJobFailed(
        print_job_id="j1",
        purpose=JobPurpose.STOCK,
        stock_batch_id="b1",
        error_message="spaghetti",
    )
    assert stock.stock_batch_id == "b1"


def test_status_fields_use_domain_enums() -> None:
    event = make_event(
        "shipment.status-changed",
        "t",
        {
            "shipment_id": "s1",
            "order_id": "o1",
            "previous_status": "ANNOUNCED",
            "new_status": "IN_TRANSIT",
            "sendcloud_status_id": 3,
        },
    )
    assert isinstance(event.data, ShipmentStatusChanged)
    assert event.data.new_status is ShipmentStatus.IN_TRANSIT
    with pytest.raises(ValidationError):
        make_event(
            "shipment.status-changed",
            "t",
            {
                "shipment_id": "s1",
                "order_id": "o1",
                "previous_status": "ANNOUNCED",
                "new_status": "TELEPORTED",
            },
        )


def test_envelope_validates_directly_from_a_dict() -> None:
    event = Event.model_validate(
        {
            "event_id": "6f1c1e8e-0000-4000-8000-000000000001",
            "type": "gridflock.pipeline-failed",
            "version": "0.0.1",
            "tenant_id": "t",
            "occurred_at": "2026-11-24T20:00:00Z",
            "correlation_id": "c",
            "source": "gridflock",
            "data": {
                "sku": "GRID-CUSTOM-3x4",
                "gridflock_job_id": "g1",
                "failed_step": "SLICING",
                "error_message": "slicer exited 1",
            },
        }
    )
    assert event.event_id == UUID("6f1c1e8e-0000-4000-8000-000000000001")
    assert event.data.model_dump()["failed_step"] == "SLICING"


def test_events_are_immutable() -> None:
    event = make_event("order.cancelled", "t", {"order_id": "o"})
    with pytest.raises(ValidationError):
        setattr(event, "tenant_id", "other")  # noqa: B010
