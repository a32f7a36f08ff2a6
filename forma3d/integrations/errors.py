"""Typed failures of the external API clients.

Callers branch on two questions only: may this be retried later (TransientError) or does it need
an operator (PermanentError, which becomes a visible FAILED state with `message` as the reason)?
`ambiguous` says the request may have reached the service, so a create must look before it
creates again (durability rule 4).
"""

from __future__ import annotations

from typing import Any


class IntegrationError(Exception):
    """Base of every client failure: service, HTTP status (if any) and a readable message."""

    retryable = False

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        ambiguous: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.message = message
        self.status = status
        self.body = body
        self.ambiguous = ambiguous
        self.retry_after = retry_after
        self.attempts = attempts

    def __str__(self) -> str:
        status = f" {self.status}" if self.status is not None else ""
        return f"{self.service}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(service={self.service!r}, status={self.status!r}, "
            f"message={self.message!r}, attempts={self.attempts})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor args do not survive Exception's default pickling, and these
        # errors cross Ray process boundaries.
        return (_restore, (type(self), dict(self.__dict__)))


def _restore(cls: type[IntegrationError], state: dict[str, Any]) -> IntegrationError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class TransientError(IntegrationError):
    """Worth retrying later: 429, 5xx, timeouts, connection failures."""

    retryable = True


class RateLimitedError(TransientError):
    """429 from the service; `retry_after` holds its requested pause when it sent one."""


class PermanentError(IntegrationError):
    """Retrying the same request will not help; needs a fix in data, config or by an operator."""


class AuthenticationError(PermanentError):
    """401/403 or an auth message in an envelope: bad key, missing scope or no access."""


class NotFoundError(PermanentError):
    """404: the resource (or the endpoint) does not exist."""


class RejectedError(PermanentError):
    """The service understood the request and refused it (400/422, SimplyPrint `status: false`)."""


class UnexpectedResponseError(PermanentError):
    """The answer did not have the documented shape (bad JSON, missing fields, not a PDF)."""
