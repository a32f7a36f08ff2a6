"""Refusals: how an entity says no to a command, the same way for every entity.

A refusal travels back to the caller as its class name and message only (see
`forma3d.messaging.envelope.Reply`), so the HTTP layer maps the name to a status; `Invalid` keeps
its per-field problems readable from that message.
"""

from __future__ import annotations


class Refused(Exception):
    """A command its entity will not carry out, with the reason for the operator."""


class NotFound(Refused, LookupError):
    """The command names something this tenant does not have."""


class Conflict(Refused):
    """The command does not fit the current state (already paused, SKU taken, in use, ...)."""


class Invalid(Refused):
    """Fields of the command fail rules only the entity can check (e.g. files it owns)."""

    SEPARATOR = "; "

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(self.SEPARATOR.join(f"{name}: {problem}" for name, problem in errors))

    @classmethod
    def errors_of(cls, message: str) -> list[tuple[str, str]]:
        """The (field, problem) pairs back from a refusal's message."""
        pairs = [part.partition(": ") for part in message.split(cls.SEPARATOR) if part]
        return [(name, problem) for name, _, problem in pairs]
