"""The audit trail, read-only: who wrote what through the API, and security events. There is
no route that changes it (and the table refuses changes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from forma3d.http.query import QuerySpec
from forma3d.http.routes.listing import list_routes

TAG = "audit"


class AuditOut(BaseModel):
    id: int
    occurred_at: datetime
    category: str
    action: str
    actor_kind: str
    actor_id: str | None
    actor_name: str | None
    method: str | None
    route: str | None
    target_id: str | None
    status: int | None
    command: Any
    before: Any
    after: Any
    request_id: str | None
    client_address: str | None


AUDIT = QuerySpec.of(AuditOut, "audit_log a", default_sort="occurred_at:desc")

list_routes("/audit", AUDIT, name="audit", item=AuditOut, tag=TAG, permission="audit.read")
