from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.printing.jobs import (
    QueueMove,
    farm_time,
    is_stock_job_key,
    moves_ahead_of_stock,
    order_job_key,
    stock_job_key,
    summarize,
)
from forma3d.domain.printing.states import PrintJobStatus

J = PrintJobStatus
ids = st.text(min_size=1, max_size=8)


def test_order_key_is_readable_for_plain_ids() -> None:
    assert order_job_key("5001", "77", "shade", 2) == "order:5001:77:shade:2"
    assert stock_job_key("b-1", "shade", 1) == "stock:b-1:shade:1"


@given(ids, ids, ids, st.integers(1, 9), ids, ids, ids, st.integers(1, 9))
def test_distinct_tuples_never_share_an_order_key(
    o1: str, l1: str, p1: str, c1: int, o2: str, l2: str, p2: str, c2: int
) -> None:
    same_key = order_job_key(o1, l1, p1, c1) == order_job_key(o2, l2, p2, c2)
    assert same_key == ((o1, l1, p1, c1) == (o2, l2, p2, c2))


def test_order_and_stock_keys_live_in_different_namespaces() -> None:
    assert order_job_key("a", "b", "c", 1) != stock_job_key("a:b", "c", 1)


def test_keys_reject_empty_ids_and_copy_zero() -> None:
    with pytest.raises(ValueError, match="empty component"):
        order_job_key("", "l", "p", 1)
    with pytest.raises(ValueError, match="copy number 0"):
        order_job_key("o", "l", "p", 0)
    with pytest.raises(ValueError, match="copy number 0"):
        stock_job_key("b", "p", 0)


def test_summary_counts_every_status() -> None:
    summary = summarize([J.COMPLETED, J.COMPLETED, J.PRINTING, J.FAILED, J.QUEUED])
    assert summary.total == 5
    assert summary.completed == 2
    assert summary.active == 2
    assert summary.counts[J.CANCELLED] == 0
    assert not summary.all_completed
    assert summarize([J.COMPLETED]).all_completed
    assert not summarize([]).all_completed


def test_stock_keys_are_told_from_order_keys_also_inside_a_queue_note() -> None:
    assert is_stock_job_key(stock_job_key("b-1", "shade", 1) + "#0")
    assert not is_stock_job_key(order_job_key("5001", "77", "shade", 2) + "#0")


def test_order_items_move_in_front_of_the_first_stock_item_keeping_both_orders() -> None:
    # 1, 2: stock; 7: someone else's item; 5, 6: the order's, 4 already in front.
    moves = moves_ahead_of_stock([4, 1, 7, 2, 5, 6], {1, 2}, [4, 5, 6, 9])
    assert moves == [QueueMove(5, 4, 1), QueueMove(6, 5, 2)]
    order = [4, 1, 7, 2, 5, 6]
    for move in moves:
        assert order.index(move.item_id) == move.start
        order.insert(move.end, order.pop(move.start))
    assert order == [4, 5, 6, 1, 7, 2]
    assert moves_ahead_of_stock([5, 1], {1}, [5]) == []  # already in front
    assert moves_ahead_of_stock([1, 5], set(), [5]) == []  # no stock waiting


def test_a_farm_time_is_kept_unless_it_lies_ahead_of_ours() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    earlier = now - timedelta(minutes=5)
    assert farm_time(earlier, now) == earlier
    assert farm_time(now + timedelta(hours=9), now) == now  # an accelerated or skewed clock
    assert farm_time(None, now) == now
    assert farm_time(earlier.replace(tzinfo=None), now) == earlier  # naive is UTC
