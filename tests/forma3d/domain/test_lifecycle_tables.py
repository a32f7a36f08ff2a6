"""Properties every lifecycle table in the domain must have."""

from __future__ import annotations

from typing import Any

import pytest

from forma3d.domain.gridflock.states import GRIDFLOCK_JOB_MACHINE
from forma3d.domain.inventory.states import STOCK_BATCH_MACHINE
from forma3d.domain.orders.states import LINE_ITEM_MACHINE, ORDER_MACHINE
from forma3d.domain.printing.states import PRINT_JOB_MACHINE
from forma3d.domain.shipping.states import SHIPMENT_MACHINE
from forma3d.domain.statemachine import StateMachine

MACHINES: list[StateMachine[Any]] = [
    ORDER_MACHINE,
    LINE_ITEM_MACHINE,
    PRINT_JOB_MACHINE,
    SHIPMENT_MACHINE,
    GRIDFLOCK_JOB_MACHINE,
    STOCK_BATCH_MACHINE,
]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_every_state_is_reachable_from_the_initial_one(machine: StateMachine[Any]) -> None:
    assert machine.reachable() == set(machine.transitions)


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_no_dead_ends_every_state_can_still_finish(machine: StateMachine[Any]) -> None:
    """A record can always be driven to a terminal state, so nothing is stuck forever."""
    assert machine.terminal
    for state in machine.states:
        assert machine.reachable(state) & machine.terminal, state


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_state_values_are_their_names(machine: StateMachine[Any]) -> None:
    """Stored strings are the member names, so a database value parses back to the member."""
    for state in machine.states:
        assert state.value == state.name
        assert machine.parse(state.value) is state


def test_machine_names_are_unique() -> None:
    assert len({m.name for m in MACHINES}) == len(MACHINES)
