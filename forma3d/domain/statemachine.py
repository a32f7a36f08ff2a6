"""One generic state machine: a table of allowed transitions over a string enum.

Every lifecycle in the domain (order, line item, print job, shipment, GridFlock job, stock batch)
is one of these tables, so the rules live in data that can be read, tested and drawn, not in ifs
scattered over handlers. An illegal move raises instead of silently overwriting a state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(ValueError):
    """A move that the machine's table does not allow; names the machine and both states."""

    def __init__(self, machine: str, source: str, target: str) -> None:
        self.machine = machine
        self.source = source
        self.target = target
        super().__init__(f"{machine}: illegal transition {source} -> {target}")


class StateMachine(Generic[S]):
    """Allowed transitions of one lifecycle; states without outgoing moves are terminal.

    Every member of the enum must appear as a key of the table (an empty collection marks a
    terminal state), so forgetting a state is an error at import time, not a silent dead end.
    Staying in the same state is not a transition: replays are recognised by `advance`.
    """

    def __init__(
        self,
        name: str,
        states: type[S],
        transitions: Mapping[S, Iterable[S]],
        *,
        initial: S,
    ) -> None:
        missing = [s.value for s in states if s not in transitions]
        if missing:
            raise ValueError(f"{name}: no table entry for {missing}")
        table: dict[S, frozenset[S]] = {}
        for source, targets in transitions.items():
            frozen = frozenset(targets)
            stray = [t for t in (source, *frozen) if not isinstance(t, states)]
            if stray:
                raise ValueError(f"{name}: {stray!r} are not {states.__name__} members")
            if source in frozen:
                raise ValueError(f"{name}: {source.value} -> itself is not a transition")
            table[source] = frozen
        self.name = name
        self.states = states
        self.initial = initial
        self.transitions: Mapping[S, frozenset[S]] = MappingProxyType(table)

    def __repr__(self) -> str:
        return f"StateMachine({self.name!r}, {self.states.__name__})"

    def parse(self, value: str) -> S:
        """The state named by a stored string; a ValueError that names this machine otherwise."""
        try:
            return self.states(value)
        except ValueError:
            known = ", ".join(s.value for s in self.states)
            raise ValueError(f"{self.name}: unknown state {value!r} (known: {known})") from None

    def can(self, source: S, target: S) -> bool:
        return target in self.transitions[source]

    def check(self, source: S, target: S) -> S:
        """Return `target` if the move is allowed, else raise IllegalTransition."""
        if not self.can(source, target):
            raise IllegalTransition(self.name, source, target)
        return target

    def advance(self, source: S, target: S) -> bool:
        """True if the state changes, False for a replay of the current state (at-least-once
        delivery makes those normal), IllegalTransition for anything else."""
        if source == target:
            return False
        self.check(source, target)
        return True

    def allowed_from(self, state: S) -> frozenset[S]:
        return self.transitions[state]

    @property
    def terminal(self) -> frozenset[S]:
        return frozenset(s for s, targets in self.transitions.items() if not targets)

    def is_terminal(self, state: S) -> bool:
        return not self.transitions[state]

    def reachable(self, start: S | None = None) -> frozenset[S]:
        """States reachable from `start` (default: the initial state), itself included."""
        seen = {self.initial if start is None else start}
        frontier = list(seen)
        while frontier:
            for nxt in self.transitions[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        return frozenset(seen)
