"""Security events: sign-in failures, lockouts, key and role changes, and every action of the
platform administrator across tenants. Append-only."""

from __future__ import annotations

import uuid
from typing import Any

from forma3d.db.pool import Connection, Pool


async def record_security_event(db: Pool | Connection, tenant_id: uuid.UUID | None, actor: str,
                                kind: str, detail: dict[str, Any] | None = None, *,
                                client: str | None = None,
                                request_id: str | None = None) -> None:
    await db.execute(
        """INSERT INTO security_events (tenant_id, actor, kind, detail, client, request_id)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        tenant_id, actor, kind, detail or {}, client, request_id)
