"""Integration rows: public config in JSON, secrets sealed (forma3d.platform.secrets).

Every change (connect, reconfigure, disconnect) records its `integration.<service>-changed`
event and a NOTIFY on `CHANGED_CHANNEL` in the same transaction, so each process holding a
`SettingsCache` (Serve replicas, entity hosts) drops the tenant's settings as the change
commits. The last failure of a call made with a connection's credentials is kept on its row
(`note_failure`), so the API shows a connection whose credentials stopped working.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from forma3d.db.pool import Connection, Pool, connect, transaction
from forma3d.domain.events import EventType
from forma3d.integrations.errors import AuthenticationError, IntegrationError
from forma3d.integrations.settings import SERVICES, IntegrationSettings, S
from forma3d.platform.secrets import seal, unseal
from forma3d.store.events import record

log = logging.getLogger(__name__)

CHANGED = {"shopify": EventType.INTEGRATION_SHOPIFY_CHANGED,
           "simplyprint": EventType.INTEGRATION_SIMPLYPRINT_CHANGED,
           "sendcloud": EventType.INTEGRATION_SENDCLOUD_CHANGED}
CHANGED_CHANNEL = "forma3d_integrations"
# A cache that is not hearing the change notices keeps settings no longer than this.
UNWATCHED_SECONDS = 0.5
# A watched cache still reloads now and then, in case a notice was lost with a connection.
WATCHED_SECONDS = 300.0
T = TypeVar("T")


async def _changed(conn: Connection, tenant_id: uuid.UUID, service: str,
                   data: dict[str, Any]) -> None:
    await record(conn, CHANGED[service], tenant_id, data)
    await conn.execute("SELECT pg_notify($1, $2)", CHANGED_CHANNEL,
                       json.dumps({"tenant_id": str(tenant_id), "service": service}))


async def save_integration(db: Pool | Connection, tenant_id: uuid.UUID,
                           settings: IntegrationSettings, *, changed_by: str | None = None
                           ) -> None:
    """Connect or reconfigure a service, with its `integration.<service>-changed` event; the
    failure noted on the previous credentials is cleared."""
    values = settings.model_dump(mode="json")
    secrets = {k: values.pop(k) for k in settings.secret_fields}
    async with transaction(db) as conn:
        await conn.execute(
            """INSERT INTO integrations (tenant_id, service, config, secrets)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (tenant_id, service)
               DO UPDATE SET config = EXCLUDED.config, secrets = EXCLUDED.secrets,
                             enabled = true, last_error = NULL, last_error_at = NULL,
                             updated_at = now()""",
            tenant_id, settings.service, values, seal(secrets),
        )
        await _changed(conn, tenant_id, settings.service, {
            "connected": True, "account": settings.account, "changed_by": changed_by})


async def remove_integration(db: Pool | Connection, tenant_id: uuid.UUID, service: str, *,
                             changed_by: str | None = None) -> bool:
    """Disconnect: the row (and its sealed secrets) is deleted. False when not connected."""
    async with transaction(db) as conn:
        deleted = await conn.fetchval(
            "DELETE FROM integrations WHERE tenant_id = $1 AND service = $2 RETURNING service",
            tenant_id, service)
        if deleted is None:
            return False
        await _changed(conn, tenant_id, service, {"connected": False, "changed_by": changed_by})
    return True


async def load_integration(db: Pool | Connection, tenant_id: uuid.UUID,
                           model: type[S]) -> S | None:
    row = await db.fetchrow(
        "SELECT config, secrets FROM integrations"
        " WHERE tenant_id = $1 AND service = $2 AND enabled", tenant_id, model.service)
    if row is None:
        return None
    values: dict[str, Any] = {**row["config"], **unseal(row["secrets"])}
    return model.model_validate(values)


async def load_any(db: Pool | Connection, tenant_id: uuid.UUID,
                   service: str) -> IntegrationSettings | None:
    """The stored settings of `service` (by name), enabled or not."""
    row = await db.fetchrow("SELECT config, secrets FROM integrations"
                            " WHERE tenant_id = $1 AND service = $2", tenant_id, service)
    if row is None:
        return None
    return SERVICES[service].model_validate({**row["config"], **unseal(row["secrets"])})


@dataclass(frozen=True)
class ConnectionRow:
    """What may be shown of a connection: public config, the last four characters of each
    secret, and the health of its last calls."""

    service: str
    enabled: bool
    config: dict[str, Any]
    secrets: dict[str, str | None]
    last_error: str | None
    last_error_at: datetime | None
    last_ok_at: datetime | None
    updated_at: datetime


def masked(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return "…" + text[-4:] if len(text) > 4 else "…"


async def connections(db: Pool | Connection, tenant_id: uuid.UUID) -> list[ConnectionRow]:
    rows = await db.fetch("SELECT * FROM integrations WHERE tenant_id = $1 ORDER BY service",
                          tenant_id)
    found = []
    for row in rows:
        secrets = unseal(row["secrets"]) if row["secrets"] else {}
        found.append(ConnectionRow(
            row["service"], row["enabled"], dict(row["config"]),
            {k: masked(v) for k, v in secrets.items()}, row["last_error"],
            row["last_error_at"], row["last_ok_at"], row["updated_at"]))
    return found


async def note_failure(db: Pool | Connection, tenant_id: uuid.UUID,
                       error: IntegrationError) -> None:
    """Keep a refusal of the connection's credentials on its row (others are the call's own)."""
    if not isinstance(error, AuthenticationError) or error.service not in CHANGED:
        return
    with contextlib.suppress(Exception):  # never let the note hide the failure itself
        await db.execute(
            "UPDATE integrations SET last_error = $3, last_error_at = now()"
            " WHERE tenant_id = $1 AND service = $2", tenant_id, error.service, str(error))


async def note_ok(db: Pool | Connection, tenant_id: uuid.UUID, service: str) -> None:
    await db.execute("UPDATE integrations SET last_ok_at = now(), last_error = NULL,"
                     " last_error_at = NULL WHERE tenant_id = $1 AND service = $2",
                     tenant_id, service)


class SettingsCache:
    """A process's integration settings by tenant and service, dropped on the change notice.

    `watch` (a task per process) listens on CHANGED_CHANNEL; while it is not listening (not
    started, or reconnecting) entries live UNWATCHED_SECONDS only, so no process uses replaced
    credentials for long even when it misses a notice."""

    def __init__(self) -> None:
        self.entries: dict[tuple[uuid.UUID, str], tuple[float, Any]] = {}
        self.listening = False
        self.changes = 0

    def invalidate(self, tenant_id: uuid.UUID | str, service: str | None = None) -> None:
        tenant = uuid.UUID(str(tenant_id))
        for key in [k for k in self.entries if k[0] == tenant and service in (None, k[1])]:
            self.entries.pop(key, None)
        self.changes += 1

    async def get(self, pool: Pool, tenant_id: uuid.UUID, model: type[S]) -> S | None:
        key = (tenant_id, model.service)
        cached = self.entries.get(key)
        if cached is not None and cached[0] > time.monotonic():
            found: S | None = cached[1]
            return found
        seen = self.changes
        settings = await load_integration(pool, tenant_id, model)
        if seen == self.changes:  # no change notice arrived while loading
            ttl = WATCHED_SECONDS if self.listening else UNWATCHED_SECONDS
            if len(self.entries) > 100_000:
                self.entries.clear()
            self.entries[key] = (time.monotonic() + ttl, settings)
        return settings

    def _heard(self, *args: Any) -> None:
        try:
            notice = json.loads(args[3])
            self.invalidate(notice["tenant_id"], notice.get("service"))
        except (ValueError, KeyError, TypeError):
            self.entries.clear()

    async def watch(self, database_url: str, retry_seconds: float = 1.0,
                    on_listening: Callable[[], None] = lambda: None) -> None:
        """Listen for change notices forever, reconnecting after a lost connection."""
        while True:
            try:
                await self._listen(database_url, on_listening)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("integration change listener: %s", error)
            await asyncio.sleep(retry_seconds)

    async def _listen(self, database_url: str, on_listening: Callable[[], None]) -> None:
        """One listening connection, until it is lost."""
        lost = asyncio.Event()
        listener = await connect(database_url)
        try:
            listener.add_termination_listener(lambda *_: lost.set())
            await listener.add_listener(CHANGED_CHANNEL, self._heard)
            self.entries.clear()  # changes made while not listening
            self.listening = True
            on_listening()
            await lost.wait()
        finally:
            self.listening = False
            self.entries.clear()
            if not listener.is_closed():
                with contextlib.suppress(Exception):
                    await listener.close()
