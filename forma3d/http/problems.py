"""application/problem+json (RFC 9457) for every error the API returns; never a stack trace."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forma3d.messaging.envelope import EntityError
from forma3d.messaging.refusals import Invalid

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
          415: "Unsupported Media Type", 422: "Unprocessable Content",
          429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
          503: "Service Unavailable", 504: "Gateway Timeout"}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 type_: str = "about:blank", errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.type = type_
        self.errors = errors
        self.headers = headers

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status,
                                "detail": self.detail}
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class ProblemResponse(JSONResponse):
    """application/problem+json, ASCII-escaped: a detail may quote client text, and a lone
    surrogate in it would fail the UTF-8 encoding of the plain JSON response (a 500)."""

    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem_response(problem: Problem, request: Request | None = None) -> Response:
    instance = request.url.path if request is not None else None
    return ProblemResponse(problem.body(instance), status_code=problem.status,
                           headers=problem.headers)


def validation_problem(error: ValidationError) -> Problem:
    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "(body)", "message": e["msg"]}
              for e in error.errors()]
    return Problem(422, f"{len(errors)} field(s) failed validation", errors=errors)


# An entity's refusal, by the error's type name (all that crosses the wire with its message).
REFUSALS = {"NotFound": 404, "Conflict": 409, "IllegalTransition": 409, "Invalid": 422}


def refusal(error: EntityError) -> Problem | None:
    """The problem an entity's refusal answers with; None for a failure (a 500 stays a 500)."""
    status = REFUSALS.get(error.error_type or "")
    if status is None:
        return None
    if error.error_type == Invalid.__name__:
        errors = [{"field": name, "message": problem}
                  for name, problem in Invalid.errors_of(str(error))]
        return Problem(status, f"{len(errors)} field(s) failed validation", errors=errors)
    return Problem(status, str(error))


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # Starlette's own headers stay: Allow on a 405 names the methods the path takes.
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(Problem(exc.status_code, str(exc.detail), headers=headers),
                            request)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem(500, "an unexpected error occurred; it has been logged"),
                            request)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    Problem: handle_problem,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
