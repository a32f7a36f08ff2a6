from __future__ import annotations

from enum import StrEnum
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.statemachine import IllegalTransition, StateMachine


class Light(StrEnum):
    RED = "RED"
    GREEN = "GREEN"
    AMBER = "AMBER"
    OFF = "OFF"


def light_machine() -> StateMachine[Light]:
    return StateMachine(
        "light",
        Light,
        {
            Light.RED: {Light.GREEN, Light.OFF},
            Light.GREEN: {Light.AMBER, Light.OFF},
            Light.AMBER: {Light.RED, Light.OFF},
            Light.OFF: set(),
        },
        initial=Light.RED,
    )


def test_check_returns_target_for_allowed_move() -> None:
    assert light_machine().check(Light.RED, Light.GREEN) is Light.GREEN


def test_illegal_transition_names_machine_and_both_states() -> None:
    with pytest.raises(IllegalTransition) as info:
        light_machine().check(Light.RED, Light.AMBER)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "light: illegal transition RED -> AMBER"
    assert (info.value.machine, info.value.source, info.value.target) == (
        "light",
        Light.RED,
        Light.AMBER,
    )


def test_terminal_states_have_no_exits() -> None:
    machine = light_machine()
    assert machine.terminal == {Light.OFF}
    assert machine.is_terminal(Light.OFF)
    assert not machine.is_terminal(Light.RED)
    assert machine.allowed_from(Light.OFF) == frozenset()


def test_advance_is_false_on_replay_true_on_change_and_raises_otherwise() -> None:
    machine = light_machine()
    assert machine.advance(Light.GREEN, Light.GREEN) is False
    assert machine.advance(Light.GREEN, Light.AMBER) is True
    with pytest.raises(IllegalTransition):
        machine.advance(Light.OFF, Light.RED)


def test_missing_state_in_table_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="no table entry for \\['OFF'\\]"):
        partial: dict[Light, set[Light]] = {s: set() for s in Light if s != Light.OFF}
        StateMachine("light", Light, partial, initial=Light.RED)


def test_self_loop_and_foreign_states_are_rejected() -> None:
    table: dict[Light, set[Light]] = {s: set() for s in Light}
    with pytest.raises(ValueError, match="itself"):
        StateMachine("light", Light, {**table, Light.RED: {Light.RED}}, initial=Light.RED)

    class Other(StrEnum):
        X = "X"

    bad = cast(dict[Light, set[Light]], {**table, Light.RED: {Other.X}})
    with pytest.raises(ValueError, match="not Light members"):
        StateMachine("light", Light, bad, initial=Light.RED)


def test_parse_names_machine_on_unknown_value() -> None:
    machine = light_machine()
    assert machine.parse("GREEN") is Light.GREEN
    with pytest.raises(ValueError, match="light: unknown state 'BLUE'"):
        machine.parse("BLUE")


def test_reachable_follows_the_table() -> None:
    machine = light_machine()
    assert machine.reachable() == set(Light)
    assert machine.reachable(Light.OFF) == {Light.OFF}


def test_table_cannot_be_mutated_after_construction() -> None:
    machine = light_machine()
    with pytest.raises(TypeError):
        machine.transitions[Light.OFF] = frozenset({Light.RED})  # type: ignore[index]


@given(st.sampled_from(Light), st.sampled_from(Light))
def test_can_and_check_agree(source: Light, target: Light) -> None:
    machine = light_machine()
    if machine.can(source, target):
        assert machine.check(source, target) is target
    else:
        with pytest.raises(IllegalTransition):
            machine.check(source, target)
