"""Writing events: into the tenant's event log, in the caller's transaction, with the outgoing
webhook deliveries they cause (forma3d.store.webhooks sends them)."""

from __future__ import annotations

import uuid
from typing import Any

from forma3d import logs
from forma3d.db.pool import Connection
from forma3d.domain.events import make_event
from forma3d.domain.webhooks import subject_of
from forma3d.messaging.live import announce


async def record(conn: Connection, event_type: str, tenant_id: uuid.UUID | str,
                 data: dict[str, Any], *, subject: tuple[str, Any] | None = None,
                 source: str = "forma3d") -> uuid.UUID:
    """Validate `data` against the catalog and append the event; returns its id."""
    event = make_event(event_type, str(tenant_id), data, source=source,
                       correlation_id=logs.correlation_id.get())
    subject_type, subject_id = subject if subject else (None, None)
    subject_key = None if subject_id is None else str(subject_id)
    # The event, and one delivery per enabled webhook subscription that wants it, in one
    # statement of the caller's transaction: a delivery exists exactly when its event does.
    await conn.execute(
        """WITH ev AS (
               INSERT INTO event_log (event_id, tenant_id, type, version, subject_type,
                                      subject_id, correlation_id, source, occurred_at, data)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *)
           INSERT INTO webhook_deliveries (delivery_id, tenant_id, subscription_id, event_id,
                                           event_type, subject, payload)
           SELECT gen_random_uuid(), s.tenant_id, s.id, ev.event_id, ev.type, $12,
                  jsonb_build_object(
                      'id', ev.event_id::text, 'type', ev.type, 'version', $11::text,
                      'timestamp', ev.occurred_at, 'tenant_id', ev.tenant_id::text,
                      'subject', CASE WHEN ev.subject_type IS NULL THEN NULL ELSE
                          jsonb_build_object('type', ev.subject_type, 'id', ev.subject_id) END,
                      'correlation_id', ev.correlation_id, 'data', ev.data)
           FROM ev JOIN webhook_subscriptions s
             ON s.tenant_id = ev.tenant_id AND s.enabled
            AND (ev.type = ANY (s.event_types) OR '*' = ANY (s.event_types))""",
        event.event_id, uuid.UUID(str(tenant_id)), event.type,
        int(event.version.split(".")[-1]) if event.version else 1, subject_type,
        subject_key, event.correlation_id, event.source,
        event.occurred_at, event.data.model_dump(mode="json"), event.version,
        subject_of(subject_type, subject_key, str(event.event_id)),
    )
    await announce(conn, {"tenant_id": str(tenant_id), "event_id": str(event.event_id),
                          "type": event.type, "subject_type": subject_type,
                          "subject_id": None if subject_id is None else str(subject_id),
                          "occurred_at": event.occurred_at.isoformat()})
    return event.event_id
