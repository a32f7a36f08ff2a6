"""Outgoing webhook subscriptions (secrets sealed at rest) and their deliveries.

Deliveries are written with their event (forma3d.store.events.record) and worked by one sender
(actors/webhooks.py): it claims the heads of pending chains, one chain per subscription and
subject, under a lease, so a subject's deliveries go out in order and a crash means a resend.
A subscription failing `max_failures` times in a row, or for `max_failing`, is switched off with
an event and an audit entry; its pending deliveries wait for it to be switched on again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from forma3d.db.pool import Connection, Pool, record_to_dict, transaction
from forma3d.domain.events import EventType
from forma3d.domain.tenants import TenantSettings
from forma3d.domain.webhooks import (
    MAX_CONSECUTIVE_FAILURES,
    MAX_FAILING,
    TargetPolicy,
    disable_reason,
)
from forma3d.integrations.signatures import new_standard_webhook_secret
from forma3d.platform.secrets import seal, unseal
from forma3d.store import audit
from forma3d.store.audit import SYSTEM, AuditEntry
from forma3d.store.events import record

WAKE_CHANNEL = "forma3d_webhooks"  # a delivery became due outside an event (redeliver, enable)
_SUBSCRIPTION_COLUMNS = ("id, tenant_id, url, description, event_types, enabled,"
                         " consecutive_failures, failing_since, disabled_reason, created_at,"
                         " updated_at")


@dataclass
class Subscription:
    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    consecutive_failures: int
    failing_since: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> Subscription:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Target:
    """Where a subscription's deliveries go, with its secret (only the sender holds this)."""

    subscription_id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    secret: str
    enabled: bool
    policy: TargetPolicy


@dataclass(frozen=True)
class Delivery:
    id: int
    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    subject: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> Delivery:
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


def policy_of(settings: TenantSettings, allow_loopback: bool = False) -> TargetPolicy:
    return TargetPolicy(allow_private=settings.webhooks_allow_private,
                        allow_loopback=allow_loopback)


async def target_policy(db: Pool | Connection, tenant_id: uuid.UUID,
                        allow_loopback: bool = False) -> TargetPolicy:
    raw = await db.fetchval("SELECT settings FROM tenants WHERE id = $1", tenant_id)
    return policy_of(TenantSettings.model_validate(raw or {}), allow_loopback)


async def create_subscription(db: Pool | Connection, tenant_id: uuid.UUID, url: str,
                              event_types: list[str], *, description: str | None = None,
                              enabled: bool = True) -> tuple[Subscription, str]:
    """A new subscription and its secret (the only time the secret leaves the store)."""
    secret = new_standard_webhook_secret()
    row = await db.fetchrow(
        f"""INSERT INTO webhook_subscriptions (id, tenant_id, url, description, event_types,
                                               enabled, secret)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_SUBSCRIPTION_COLUMNS}""",
        uuid.uuid4(), tenant_id, url, description, event_types, enabled,
        seal({"secret": secret}))
    return Subscription.of(row), secret


async def get_subscription(db: Pool | Connection, tenant_id: uuid.UUID,
                           subscription_id: uuid.UUID) -> Subscription | None:
    row = await db.fetchrow(f"SELECT {_SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions"
                            " WHERE tenant_id = $1 AND id = $2", tenant_id, subscription_id)
    return Subscription.of(row) if row else None


async def update_subscription(db: Pool | Connection, tenant_id: uuid.UUID,
                              subscription_id: uuid.UUID, changes: dict[str, Any],
                              ) -> Subscription | None:
    """Change url, description, event_types or enabled; switching on clears the failure count
    (its waiting deliveries go out again)."""
    allowed = {k: v for k, v in changes.items()
               if k in ("url", "description", "event_types", "enabled")}
    sets = "".join(f", {k} = ${i}" for i, k in enumerate(allowed, start=3))
    if allowed.get("enabled") is True:
        sets += ", consecutive_failures = 0, failing_since = NULL, disabled_reason = NULL"
    row = await db.fetchrow(
        f"UPDATE webhook_subscriptions SET updated_at = now(){sets}"
        f" WHERE tenant_id = $1 AND id = $2 RETURNING {_SUBSCRIPTION_COLUMNS}",
        tenant_id, subscription_id, *allowed.values())
    if row is not None and allowed.get("enabled") is True:
        await db.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return Subscription.of(row) if row else None


async def delete_subscription(db: Pool | Connection, tenant_id: uuid.UUID,
                              subscription_id: uuid.UUID) -> bool:
    """Remove a subscription with its delivery history."""
    status: str = await db.execute(
        "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
        tenant_id, subscription_id)
    return status.endswith(" 1")


async def targets(db: Pool | Connection, subscription_ids: list[uuid.UUID],
                  allow_loopback: bool = False) -> dict[uuid.UUID, Target]:
    rows = await db.fetch(
        """SELECT s.id, s.tenant_id, s.url, s.secret, s.enabled, t.settings
           FROM webhook_subscriptions s JOIN tenants t ON t.id = s.tenant_id
           WHERE s.id = ANY ($1)""", subscription_ids)
    return {r["id"]: Target(r["id"], r["tenant_id"], r["url"], unseal(r["secret"])["secret"],
                            r["enabled"], policy_of(TenantSettings.model_validate(
                                r["settings"] or {}), allow_loopback))
            for r in rows}


# --- deliveries -----------------------------------------------------------------------------


async def claim(pool: Pool, chains: int, batch_size: int, lease_seconds: float) -> list[Delivery]:
    """Pending deliveries of up to `chains` (subscription, subject) chains whose first pending
    delivery is due and not leased, in order, at most `batch_size` in all, leased to the caller.
    Only enabled subscriptions' chains move."""
    rows = await pool.fetch(
        """WITH heads AS (
               SELECT DISTINCT ON (d.subscription_id, d.subject)
                      d.id, d.subscription_id, d.subject, d.next_attempt_at, d.claimed_until
               FROM webhook_deliveries d
               JOIN webhook_subscriptions s ON s.id = d.subscription_id AND s.enabled
               WHERE d.status = 'PENDING'
               ORDER BY d.subscription_id, d.subject, d.id),
           ready AS (
               SELECT subscription_id, subject FROM heads
               WHERE next_attempt_at <= now()
                 AND (claimed_until IS NULL OR claimed_until < now())
               ORDER BY id LIMIT $1),
           picked AS (
               SELECT d.id FROM webhook_deliveries d
               JOIN ready r ON r.subscription_id = d.subscription_id AND r.subject = d.subject
               WHERE d.status = 'PENDING'
               ORDER BY d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED)
           UPDATE webhook_deliveries d
           SET claimed_until = now() + make_interval(secs => $3)
           FROM picked WHERE d.id = picked.id
           RETURNING d.*""", chains, batch_size, lease_seconds)
    return sorted((Delivery.of(r) for r in rows), key=lambda d: d.id)


async def release(pool: Pool, ids: list[int]) -> None:
    """Leases given back unsent (they wait behind a failed delivery of their chain)."""
    if ids:
        await pool.execute("UPDATE webhook_deliveries SET claimed_until = NULL"
                           " WHERE id = ANY ($1) AND status = 'PENDING'", ids)


async def release_claims(pool: Pool) -> int:
    """Every lease dropped: only for the cluster's one sender, at its start."""
    result: str = await pool.execute(
        "UPDATE webhook_deliveries SET claimed_until = NULL"
        " WHERE status = 'PENDING' AND claimed_until IS NOT NULL")
    return int(result.split()[-1])


async def delivered(pool: Pool, delivery: Delivery, http_status: int | None) -> None:
    async with transaction(pool) as conn:
        await conn.execute(
            """UPDATE webhook_deliveries SET status = 'DELIVERED', delivered_at = now(),
                   attempts = attempts + 1, last_attempt_at = now(), last_status = $2,
                   last_error = NULL, claimed_until = NULL
               WHERE id = $1""", delivery.id, http_status)
        await conn.execute(
            "UPDATE webhook_subscriptions SET consecutive_failures = 0, failing_since = NULL"
            " WHERE id = $1 AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)",
            delivery.subscription_id)


async def failed(pool: Pool, delivery: Delivery, http_status: int | None, error: str,
                 retry_in: float, *, max_failures: int = MAX_CONSECUTIVE_FAILURES,
                 max_failing: timedelta = MAX_FAILING) -> str | None:
    """A failed attempt: the delivery waits `retry_in` seconds, the subscription's failure run
    grows, and if the rule says so it is switched off (with `webhook-subscription.disabled` and
    an audit entry). The reason it was switched off, or None."""
    async with transaction(pool) as conn:
        await conn.execute(
            """UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(),
                   last_status = $2, last_error = $3, claimed_until = NULL,
                   next_attempt_at = now() + make_interval(secs => $4)
               WHERE id = $1 AND status = 'PENDING'""",
            delivery.id, http_status, error[:500], retry_in)
        row = await conn.fetchrow(
            """UPDATE webhook_subscriptions
               SET consecutive_failures = consecutive_failures + 1,
                   failing_since = coalesce(failing_since, now())
               WHERE id = $1 RETURNING enabled, url, consecutive_failures, failing_since""",
            delivery.subscription_id)
        if row is None or not row["enabled"]:
            return None
        reason = disable_reason(row["consecutive_failures"], row["failing_since"],
                                datetime.now(UTC), max_failures=max_failures,
                                max_failing=max_failing)
        if reason is None:
            return None
        await conn.execute(
            "UPDATE webhook_subscriptions SET enabled = false, disabled_reason = $2,"
            " updated_at = now() WHERE id = $1", delivery.subscription_id, reason)
        await record(conn, EventType.WEBHOOK_SUBSCRIPTION_DISABLED, delivery.tenant_id, {
            "subscription_id": str(delivery.subscription_id), "url": row["url"],
            "reason": reason, "consecutive_failures": row["consecutive_failures"]},
            subject=("webhook-subscription", delivery.subscription_id))
        await audit.record(conn, AuditEntry(
            tenant_id=delivery.tenant_id, category="system",
            action="webhook_subscription.disabled", actor=SYSTEM,
            target_id=str(delivery.subscription_id),
            before={"enabled": True}, after={"enabled": False, "reason": reason,
                                             "last_error": error[:500]}))
        return reason


async def redeliver(db: Pool | Connection, tenant_id: uuid.UUID, subscription_id: uuid.UUID,
                    delivery_id: uuid.UUID) -> dict[str, Any] | None:
    """Send a delivery again: a new delivery of the same event (same `webhook-id`), at the end
    of its subject's chain. None when there is no such delivery."""
    row = await db.fetchrow(
        """INSERT INTO webhook_deliveries (delivery_id, tenant_id, subscription_id, event_id,
                                           event_type, subject, payload, redelivery_of)
           SELECT $4, tenant_id, subscription_id, event_id, event_type, subject, payload,
                  delivery_id
           FROM webhook_deliveries
           WHERE tenant_id = $1 AND subscription_id = $2 AND delivery_id = $3
           RETURNING *""", tenant_id, subscription_id, delivery_id, uuid.uuid4())
    if row is None:
        return None
    await db.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)
    return record_to_dict(row)
