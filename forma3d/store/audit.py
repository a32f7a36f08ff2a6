"""The audit trail: one append-only row per API write, security event or system decision.

`record` is the one writer; the table refuses UPDATE, DELETE and TRUNCATE (a trigger), so the
trail can only grow. Secrets never reach it: `redact` blanks every field named like one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from forma3d.db.pool import Connection, Pool

Category = Literal["write", "security", "system"]
ActorKind = Literal["user", "key", "platform", "system", "anonymous"]
MAX_JSON_BYTES = 32 * 1024  # a bigger command or answer is kept as its size only
_SECRET_NAMES = frozenset({"secret", "key", "password", "token", "api_key", "signing_key",
                           "webhook_secret", "new_password", "current_password"})
_SECRET_SUFFIXES = ("_secret", "_password", "_token")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Actor:
    """Who acted: a user, an API key, a platform administrator or the system itself."""

    kind: ActorKind
    id: str | None = None
    name: str | None = None


SYSTEM = Actor("system", None, "forma3d")


@dataclass(frozen=True)
class AuditEntry:
    """One row of the trail. `action` names what happened: `"PATCH /printers/{printer_id}"` for
    a write, `"api_key.created"`, `"sign_in.failed"`, `"webhook_subscription.disabled"`..."""

    tenant_id: uuid.UUID | None
    category: Category
    action: str
    actor: Actor
    target_id: str | None = None
    method: str | None = None
    route: str | None = None
    status: int | None = None
    command: Any = None
    before: Any = None
    after: Any = None
    request_id: str | None = None
    client_address: str | None = None


def redact(value: Any) -> Any:
    """`value` with every field named like a secret replaced by a marker (recursively)."""
    if isinstance(value, Mapping):
        return {k: REDACTED if _secret_name(str(k)) and v is not None else redact(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def _bounded(value: Any) -> Any:
    """JSON-ready, redacted and at most MAX_JSON_BYTES (else a note of its size)."""
    if value is None:
        return None
    clean = redact(value)
    size = len(json.dumps(clean, default=str))
    if size > MAX_JSON_BYTES:
        return {"omitted": True, "bytes": size}
    return json.loads(json.dumps(clean, default=str))


async def record(db: Pool | Connection, entry: AuditEntry) -> int:
    """Append `entry` (in the caller's transaction when given a connection); its row id."""
    row_id: int = await db.fetchval(
        """INSERT INTO audit_log (tenant_id, category, action, actor_kind, actor_id, actor_name,
                                  method, route, target_id, status, command, before, after,
                                  request_id, client_address)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
           RETURNING id""",
        entry.tenant_id, entry.category, entry.action, entry.actor.kind, entry.actor.id,
        entry.actor.name, entry.method, entry.route, entry.target_id, entry.status,
        _bounded(entry.command), _bounded(entry.before), _bounded(entry.after),
        entry.request_id, entry.client_address)
    return row_id
