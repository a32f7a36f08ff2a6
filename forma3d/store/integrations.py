"""Integration rows: public config in JSON, secrets sealed (forma3d.platform.secrets)."""

from __future__ import annotations

import uuid
from typing import Any

from forma3d.db.pool import Connection, Pool, transaction
from forma3d.domain.events import EventType
from forma3d.integrations.settings import IntegrationSettings, S
from forma3d.platform.secrets import seal, unseal
from forma3d.store.events import record

CHANGED = {"shopify": EventType.INTEGRATION_SHOPIFY_CHANGED,
           "simplyprint": EventType.INTEGRATION_SIMPLYPRINT_CHANGED,
           "sendcloud": EventType.INTEGRATION_SENDCLOUD_CHANGED}


async def save_integration(db: Pool | Connection, tenant_id: uuid.UUID,
                           settings: IntegrationSettings, *, changed_by: str | None = None
                           ) -> None:
    """Connect or reconfigure a service, with its `integration.<service>-changed` event."""
    values = settings.model_dump(mode="json")
    secrets = {k: values.pop(k) for k in settings.secret_fields}
    async with transaction(db) as conn:
        await conn.execute(
            """INSERT INTO integrations (tenant_id, service, config, secrets)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant_id, service)
               DO UPDATE SET config = EXCLUDED.config, secrets = EXCLUDED.secrets,
                             updated_at = now()""",
            tenant_id, settings.service, values, seal(secrets),
        )
        await record(conn, CHANGED[settings.service], tenant_id, {
            "connected": True, "account": settings.account, "changed_by": changed_by})


async def load_integration(db: Pool | Connection, tenant_id: uuid.UUID,
                           model: type[S]) -> S | None:
    row = await db.fetchrow(
        "SELECT config, secrets FROM integrations"
        " WHERE tenant_id = $1 AND service = $2 AND enabled", tenant_id, model.service)
    if row is None:
        return None
    values: dict[str, Any] = {**row["config"], **unseal(row["secrets"])}
    return model.model_validate(values)
