"""Outbox dead letters: durable messages an entity refused for good, listed with the refusal
(the shared query language) and requeued by an operator once the cause is fixed.

Webhook deliveries whose processing failed are dead letters too, but of the inbox: they keep
their own list and retry at /api/v1/webhooks/dead-letters. The two are not merged into one
list because they are different things with different ids and actions: a webhook dead letter
is a stored delivery the tenant entity processes again, an outbox dead letter is a message
delivered again to its target as it was written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel
from starlette.requests import Request

from forma3d.domain.bounded import INT64_MAX
from forma3d.http.deps import deps, tenant_of
from forma3d.http.problems import Problem
from forma3d.http.query import Column, QuerySpec
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes
from forma3d.store import outbox

TAG = "dead-letters"


class OutboxDeadLetterOut(BaseModel):
    id: int
    message_id: UUID
    message_type: str
    target_kind: str
    target_key: str
    reason: Annotated[str | None, Column("o.last_error")]
    attempts: int
    correlation_id: str | None
    created_at: datetime
    failed_at: Annotated[datetime, Column("o.done_at")]


class RequeueOut(BaseModel):
    id: int
    status: str


DEAD_LETTERS = QuerySpec.of(OutboxDeadLetterOut, "outbox o",
                            scope="o.done_at IS NOT NULL AND o.last_error IS NOT NULL",
                            default_sort="failed_at:desc")

list_routes("/dead-letters", DEAD_LETTERS, name="dead_letters", item=OutboxDeadLetterOut,
            tag=TAG, permission="dead_letters.read")


def _row_id(request: Request) -> int:
    raw = request.path_params["letter_id"]
    if not raw.isdigit() or int(raw) > INT64_MAX:
        raise Problem(404, f"dead letter {raw!r} not found")
    return int(raw)


@api.route("GET", "/dead-letters/{letter_id}", "Get an outbox dead letter",
           response=OutboxDeadLetterOut, tags=(TAG,), permission="dead_letters.read")
async def get_dead_letter(request: Request) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, DEAD_LETTERS, tenant_of(request), _row_id(request),
                               "dead letter")


@api.route("POST", "/dead-letters/{letter_id}/requeue",
           "Deliver an outbox dead letter again (after its cause is fixed)", response=RequeueOut,
           status=202, tags=(TAG,), permission="dead_letters.requeue")
async def requeue_dead_letter(request: Request) -> RequeueOut:
    row_id = _row_id(request)
    async with deps(request).pool.acquire() as conn, conn.transaction():
        if not await outbox.requeue(conn, tenant_of(request), row_id):
            raise Problem(404, f"dead letter {row_id} not found")
    return RequeueOut(id=row_id, status="requeued")
