from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forma3d.domain.orders.progress import (
    JobCounts,
    LineItemState,
    PartCounts,
    derive_order_status,
    line_item_parts,
    line_item_status_from_counts,
    line_item_status_from_jobs,
    next_order_status,
    order_parts,
)
from forma3d.domain.orders.states import (
    LINE_ITEM_MACHINE,
    ORDER_MACHINE,
    LineItemStatus,
    OrderStatus,
)
from forma3d.domain.printing.states import PrintJobStatus

L = LineItemStatus
OS = OrderStatus
J = PrintJobStatus


def item(status: LineItemStatus, n: int = 1, sku: str = "SKU") -> LineItemState:
    return LineItemState(f"li{n}", sku, status)


def test_part_counts_add_and_report_completion() -> None:
    a = line_item_parts(2, 3, from_stock=1, completed_jobs=1)
    assert a == PartCounts(total=6, completed=4)
    total = order_parts([a, PartCounts(4, 4)])
    assert total == PartCounts(10, 8)
    assert total.percent == 80 and not total.is_complete
    assert order_parts([PartCounts(4, 4)]).is_complete
    assert not PartCounts().is_complete and PartCounts().percent == 0


def test_percent_rounds_down_so_100_means_done() -> None:
    assert PartCounts(1000, 999).percent == 99


def test_part_counts_reject_more_completed_than_total() -> None:
    with pytest.raises(ValueError, match=re.escape("completed 3 not in 0..2")):
        PartCounts(2, 3)
    with pytest.raises(ValueError, match="from_stock"):
        line_item_parts(1, 1, from_stock=2)


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([J.COMPLETED, J.COMPLETED], L.PRINTED),
        ([J.COMPLETED, J.PRINTING], L.PRINTING),
        ([J.QUEUED], L.PRINTING),
        ([J.COMPLETED, J.FAILED, J.PRINTING], L.FAILED),
        ([J.COMPLETED, J.CANCELLED], L.FAILED),
    ],
)
def test_line_item_status_from_jobs(jobs: list[PrintJobStatus], expected: LineItemStatus) -> None:
    assert line_item_status_from_jobs(jobs) == expected


def test_line_item_status_needs_jobs() -> None:
    with pytest.raises(ValueError, match="no print jobs"):
        line_item_status_from_jobs([])


def test_all_printed_or_stocked_is_ready() -> None:
    derived = derive_order_status([item(L.PRINTED, 1), item(L.FROM_STOCK, 2)])
    assert derived.status == OS.READY_FOR_FULFILLMENT and derived.reason is None


def test_needs_mapping_holds_the_order_with_the_sku_in_the_reason() -> None:
    derived = derive_order_status([item(L.PRINTING, 1), item(L.NEEDS_MAPPING, 2, "GRID-X")])
    assert derived.status == OS.ON_HOLD
    assert derived.reason == ("no product mapping for: GRID-X (li2); create one"
                              " (POST /api/v1/product-mappings) and the order resumes by itself")


def test_failed_beats_needs_mapping() -> None:
    derived = derive_order_status([item(L.FAILED, 1, "A"), item(L.NEEDS_MAPPING, 2)])
    assert derived.status == OS.FAILED and derived.reason == "line items failed: A (li1)"


def test_operator_hold_wins_unless_everything_is_cancelled() -> None:
    assert derive_order_status([item(L.FAILED)], operator_hold="bad address").status == OS.ON_HOLD
    derived = derive_order_status([item(L.CANCELLED)], operator_hold="x")
    assert derived.status == OS.CANCELLED


def test_cancelled_line_items_are_ignored_while_others_remain() -> None:
    derived = derive_order_status([item(L.CANCELLED, 1), item(L.PRINTED, 2)])
    assert derived.status == OS.READY_FOR_FULFILLMENT


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], OS.PENDING),
        ([L.PENDING, L.PENDING], OS.PENDING),
        ([L.PENDING, L.PRINTING], OS.PROCESSING),
        ([L.GENERATING], OS.PROCESSING),
        ([L.PRINTED, L.PRINTING], OS.PROCESSING),
    ],
)
def test_in_progress_states(statuses: list[LineItemStatus], expected: OrderStatus) -> None:
    assert derive_order_status([item(s, n) for n, s in enumerate(statuses)]).status == expected


def test_terminal_orders_ignore_late_changes() -> None:
    assert next_order_status(OS.FULFILLED, OS.FAILED) == OS.FULFILLED
    assert next_order_status(OS.CANCELLED, OS.PROCESSING) == OS.CANCELLED


def test_started_order_does_not_go_back_to_pending() -> None:
    assert next_order_status(OS.PROCESSING, OS.PENDING) == OS.PROCESSING
    assert next_order_status(OS.FAILED, OS.PENDING) == OS.PROCESSING
    assert next_order_status(OS.ON_HOLD, OS.PENDING) == OS.PENDING


def test_failed_order_is_revived_by_a_requeued_job() -> None:
    assert next_order_status(OS.FAILED, OS.PROCESSING) == OS.PROCESSING


@settings(max_examples=300)
@given(
    st.integers(min_value=1, max_value=4),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),
            st.sampled_from(L),
            st.one_of(st.none(), st.just("operator hold")),
        ),
        max_size=40,
    ),
)
def test_legal_line_item_walks_never_drive_the_order_illegally(
    n_items: int, steps: list[tuple[int, LineItemStatus, str | None]]
) -> None:
    """Whatever legal path the line items take, the derived order status follows the order
    machine: next_order_status never raises on real histories."""
    items = [L.PENDING] * n_items
    order = OS.PENDING
    for index, target, hold in steps:
        index %= n_items
        if LINE_ITEM_MACHINE.can(items[index], target):
            items[index] = target
        derived = derive_order_status([item(s, n) for n, s in enumerate(items)], operator_hold=hold)
        before = order
        order = next_order_status(order, derived.status)
        assert order == before or ORDER_MACHINE.can(before, order)


@pytest.mark.parametrize(("status", "counts", "expected"), [
    (L.PRINTING, JobCounts(3, done=1), L.PRINTING),
    (L.PRINTING, JobCounts(3, done=3), L.PRINTED),
    (L.PRINTING, JobCounts(3, done=2, failed=1), L.FAILED),
    (L.PRINTED, JobCounts(2, done=1, cancelled=1), L.FAILED),
    (L.FAILED, JobCounts(2, done=2), L.PRINTED),
    (L.FAILED, JobCounts(2, done=1), L.PRINTING),
    (L.PRINTING, None, None),
    (L.NEEDS_MAPPING, JobCounts(1), None),
    (L.CANCELLED, JobCounts(1, cancelled=1), None),
    (L.FROM_STOCK, JobCounts(1, done=1), None),
])
def test_line_item_status_from_job_counts(status: LineItemStatus, counts: JobCounts | None,
                                          expected: LineItemStatus | None) -> None:
    assert line_item_status_from_counts(status, counts) == expected
