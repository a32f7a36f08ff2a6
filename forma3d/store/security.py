"""Security events: sign-in failures, lockouts, key and role changes, and every action of the
platform administrator across tenants. They are rows of the one append-only audit trail
(`store.audit`, category `security`), so `GET /api/v1/audit` shows them beside the writes."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from forma3d.db.pool import Connection, Pool
from forma3d.store.audit import Actor, ActorKind, AuditEntry, record


def actor_from_label(label: str) -> Actor:
    """`user:<id>`, `key:<id>` or `platform` (a principal's `actor` label) as an audit actor."""
    kind, _, found_id = label.partition(":")
    if kind in get_args(ActorKind):
        return Actor(kind, found_id or None)  # type: ignore[arg-type]
    return Actor("system", None, label)


async def record_security_event(db: Pool | Connection, tenant_id: uuid.UUID | None, actor: str,
                                kind: str, detail: dict[str, Any] | None = None, *,
                                client: str | None = None,
                                request_id: str | None = None) -> None:
    await record(db, AuditEntry(
        tenant_id=tenant_id, category="security", action=kind, actor=actor_from_label(actor),
        after=detail or {}, request_id=request_id, client_address=client))
