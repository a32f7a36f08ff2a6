"""Dead letters: stored webhook deliveries whose processing failed, listed with their reason
(the shared query language) and sent back to processing by an operator's retry (a command to
the tenant entity, which owns the inbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel
from starlette.requests import Request

from forma3d.domain.bounded import INT64_MAX
from forma3d.http.deps import ask, deps, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Column, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes
from forma3d.messaging.tenant import RetryDeadLetter

TAG = "webhooks"


class DeadLetterOut(BaseModel):
    id: int
    source: str
    topic: str
    delivery_key: str
    reason: Annotated[str | None, Column("w.error")]
    attempts: int
    received_at: datetime
    dead_lettered_at: datetime


class RetryOut(BaseModel):
    id: int
    status: str


DEAD_LETTERS = QuerySpec.of(DeadLetterOut, "webhook_inbox w",
                            scope="w.dead_lettered_at IS NOT NULL",
                            default_sort="dead_lettered_at:desc")

list_routes("/webhooks/dead-letters", DEAD_LETTERS, permission="webhooks.read",
            name="dead_letters", item=DeadLetterOut,
            tag=TAG)


def _inbox_id(request: Request) -> int:
    raw = request.path_params["inbox_id"]
    if not raw.isdigit() or int(raw) > INT64_MAX:
        raise Problem(404, f"dead letter {raw!r} not found")
    return int(raw)


@api.route("GET", "/webhooks/dead-letters/{inbox_id}", "Get a dead-lettered webhook delivery",
           response=DeadLetterOut, tags=(TAG,),
           permission="webhooks.read")
async def get_dead_letter(request: Request) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, DEAD_LETTERS, tenant_of(request), _inbox_id(request),
                               "dead letter")


@api.route("POST", "/webhooks/dead-letters/{inbox_id}/retry",
           "Send a dead-lettered webhook delivery back to processing", response=RetryOut,
           status=202, tags=(TAG,),
           permission="webhooks.retry")
async def retry_dead_letter(request: Request) -> object:
    return await ask(request, RetryDeadLetter(tenant_id=tenant_of(request),
                                              inbox_id=_inbox_id(request)))
