from __future__ import annotations

import itertools

import pytest

from forma3d.domain.orders.states import (
    LINE_ITEM_MACHINE,
    ORDER_MACHINE,
    LineItemStatus,
    OrderStatus,
)
from forma3d.domain.statemachine import IllegalTransition

OS = OrderStatus
L = LineItemStatus


def test_happy_path_is_legal() -> None:
    path = [OS.PENDING, OS.PROCESSING, OS.READY_FOR_FULFILLMENT, OS.FULFILLED]
    for source, target in itertools.pairwise(path):
        ORDER_MACHINE.check(source, target)


def test_requeue_revives_failed_order() -> None:
    assert ORDER_MACHINE.can(OS.FAILED, OS.PROCESSING)


@pytest.mark.parametrize("other", [OS.PENDING, OS.PROCESSING])
def test_hold_goes_both_ways_with_pending_and_processing(other: OrderStatus) -> None:
    assert ORDER_MACHINE.can(other, OS.ON_HOLD)
    assert ORDER_MACHINE.can(OS.ON_HOLD, other)


def test_cancelled_and_fulfilled_are_the_only_terminal_states() -> None:
    assert ORDER_MACHINE.terminal == {OS.CANCELLED, OS.FULFILLED}
    with pytest.raises(
        IllegalTransition, match="order: illegal transition CANCELLED -> PROCESSING"
    ):
        ORDER_MACHINE.check(OS.CANCELLED, OS.PROCESSING)


def test_fulfilled_only_after_ready() -> None:
    sources = {s for s in OS if ORDER_MACHINE.can(s, OS.FULFILLED)}
    assert sources == {OS.READY_FOR_FULFILLMENT}


def test_every_order_state_reachable_and_every_non_terminal_can_be_cancelled() -> None:
    assert ORDER_MACHINE.reachable() == set(OS)
    for state in set(OS) - ORDER_MACHINE.terminal:
        assert ORDER_MACHINE.can(state, OS.CANCELLED)


def test_line_item_machine_shape() -> None:
    assert LINE_ITEM_MACHINE.reachable() == set(L)
    assert LINE_ITEM_MACHINE.terminal == {L.CANCELLED}
    assert LINE_ITEM_MACHINE.can(L.PRINTING, L.PRINTED)
    assert LINE_ITEM_MACHINE.can(L.FAILED, L.PRINTING)
    assert not LINE_ITEM_MACHINE.can(L.PRINTED, L.PRINTING)
    assert not LINE_ITEM_MACHINE.can(L.FROM_STOCK, L.PRINTING)
