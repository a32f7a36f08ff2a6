"""Writing events: into the tenant's event log, in the caller's transaction."""

from __future__ import annotations

import uuid
from typing import Any

from forma3d import logs
from forma3d.db.pool import Connection
from forma3d.domain.events import make_event
from forma3d.messaging.live import announce


async def record(conn: Connection, event_type: str, tenant_id: uuid.UUID | str,
                 data: dict[str, Any], *, subject: tuple[str, Any] | None = None,
                 source: str = "forma3d") -> uuid.UUID:
    """Validate `data` against the catalog and append the event; returns its id."""
    event = make_event(event_type, str(tenant_id), data, source=source,
                       correlation_id=logs.correlation_id.get())
    subject_type, subject_id = subject if subject else (None, None)
    await conn.execute(
        """INSERT INTO event_log (event_id, tenant_id, type, version, subject_type, subject_id,
                                  correlation_id, source, occurred_at, data)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        event.event_id, uuid.UUID(str(tenant_id)), event.type,
        int(event.version.split(".")[-1]) if event.version else 1, subject_type,
        None if subject_id is None else str(subject_id), event.correlation_id, event.source,
        event.occurred_at, event.data.model_dump(mode="json"),
    )
    await announce(conn, {"tenant_id": str(tenant_id), "event_id": str(event.event_id),
                          "type": event.type, "subject_type": subject_type,
                          "subject_id": None if subject_id is None else str(subject_id),
                          "occurred_at": event.occurred_at.isoformat()})
    return event.event_id
