from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.shipping.states import (
    SENDCLOUD_STATUS_MESSAGES,
    SHIPMENT_MACHINE,
    ShipmentStatus,
    apply_carrier_status,
    status_from_sendcloud,
)

S = ShipmentStatus


@pytest.mark.parametrize(
    ("status_id", "expected"),
    [
        (999, S.PENDING),
        (1001, S.PENDING),
        (1000, S.LABEL_CREATED),
        (1002, S.FAILED),
        (1, S.ANNOUNCED),
        (13, S.ANNOUNCED),
        (22, S.IN_TRANSIT),
        (3, S.IN_TRANSIT),
        (4, S.IN_TRANSIT),
        (5, S.IN_TRANSIT),
        (12, S.IN_TRANSIT),
        (62990, S.IN_TRANSIT),
        (11, S.DELIVERED),
        (93, S.DELIVERED),
        (8, S.EXCEPTION),
        (80, S.EXCEPTION),
        (62992, S.EXCEPTION),
        (62996, S.EXCEPTION),
        (1999, S.CANCEL_REQUESTED),
        (2001, S.CANCEL_REQUESTED),
        (1998, S.CANCELLED),
        (2000, S.CANCELLED),
    ],
)
def test_sendcloud_ids_map_by_the_reference(status_id: int, expected: ShipmentStatus) -> None:
    assert status_from_sendcloud(status_id) == expected


@pytest.mark.parametrize("status_id", [1337, 62993, 62994, 62995, 0, 2, 424242, -1])
def test_ids_without_lifecycle_meaning_or_unknown_map_to_none(status_id: int) -> None:
    assert status_from_sendcloud(status_id) is None


def test_every_documented_id_is_deliberately_mapped_or_informational() -> None:
    informational = {1337, 62993, 62994, 62995}
    unmapped = {i for i in SENDCLOUD_STATUS_MESSAGES if status_from_sendcloud(i) is None}
    assert unmapped == informational


def test_terminal_states() -> None:
    assert SHIPMENT_MACHINE.terminal == {S.DELIVERED, S.CANCELLED}
    assert SHIPMENT_MACHINE.reachable() == set(S)


def test_missed_milestones_are_skipped_forward() -> None:
    assert apply_carrier_status(S.PENDING, 11) == S.DELIVERED
    assert apply_carrier_status(S.LABEL_CREATED, 3) == S.IN_TRANSIT


def test_late_earlier_milestones_are_ignored() -> None:
    assert apply_carrier_status(S.IN_TRANSIT, 1) == S.IN_TRANSIT
    assert apply_carrier_status(S.DELIVERED, 3) == S.DELIVERED
    assert apply_carrier_status(S.CANCEL_REQUESTED, 1000) == S.CANCEL_REQUESTED


def test_exceptions_recover_and_cancellation_can_be_overtaken() -> None:
    after_failed_attempt = apply_carrier_status(S.IN_TRANSIT, 8)
    assert after_failed_attempt == S.EXCEPTION
    assert apply_carrier_status(after_failed_attempt, 92) == S.IN_TRANSIT
    assert apply_carrier_status(S.CANCEL_REQUESTED, 22) == S.IN_TRANSIT
    assert apply_carrier_status(S.CANCEL_REQUESTED, 2000) == S.CANCELLED


def test_unknown_ids_keep_the_current_state() -> None:
    assert apply_carrier_status(S.ANNOUNCED, 1337) == S.ANNOUNCED
    assert apply_carrier_status(S.ANNOUNCED, 555) == S.ANNOUNCED


known_or_random_ids = st.one_of(st.sampled_from(sorted(SENDCLOUD_STATUS_MESSAGES)), st.integers())


@given(st.sampled_from(S), known_or_random_ids)
def test_carrier_input_never_raises_and_only_makes_legal_moves(
    current: ShipmentStatus, status_id: int
) -> None:
    result = apply_carrier_status(current, status_id)
    assert result == current or SHIPMENT_MACHINE.can(current, result)
    assert result in (current, status_from_sendcloud(status_id))


@given(st.lists(known_or_random_ids, max_size=30))
def test_terminal_states_absorb_any_later_reports(ids: list[int]) -> None:
    status = S.PENDING
    for status_id in ids:
        was_terminal = SHIPMENT_MACHINE.is_terminal(status)
        before = status
        status = apply_carrier_status(status, status_id)
        if was_terminal:
            assert status == before
