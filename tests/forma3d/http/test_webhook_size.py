"""Oversized farm and carrier webhooks are refused with 413 before anything is stored, whether
the sender declares the size or streams the body without one."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.http.routing import MAX_BODY_BYTES
from forma3d.integrations import signatures
from forma3d.integrations.settings import SendcloudSettings, SimplyPrintSettings
from forma3d.store.integrations import save_integration

pytestmark = pytest.mark.db
PROBLEM = "application/problem+json"
SP_SECRET, SC_SECRET = "sp-secret", "sc-secret"


@pytest.fixture
async def wired(db_pool: Pool, tenant_id: uuid.UUID) -> uuid.UUID:
    await save_integration(db_pool, tenant_id, SimplyPrintSettings(
        company_id=1, api_key="k", webhook_secret=SP_SECRET))
    await save_integration(db_pool, tenant_id, SendcloudSettings(
        public_key="p", secret_key=SC_SECRET))
    return tenant_id


def oversized(source: str) -> tuple[bytes, dict[str, str]]:
    """A correctly signed webhook of the source, one byte-ful of padding past the limit."""
    padding = "x" * (MAX_BODY_BYTES + 1)
    if source == "simplyprint":
        body = json.dumps({"event": "job.done", "timestamp": 1, "data": {"pad": padding}})
        return body.encode(), signatures.simplyprint_headers(SP_SECRET)
    body = json.dumps({"action": "parcel_status_changed", "timestamp": 1,
                       "parcel": {"id": 1, "note": padding}}).encode()
    return body, {signatures.SENDCLOUD_SIGNATURE_HEADER:
                  signatures.sendcloud_signature(SC_SECRET, body)}


async def stored(pool: Pool, tenant_id: uuid.UUID) -> tuple[int, int]:
    inbox = await pool.fetchval("SELECT count(*) FROM webhook_inbox WHERE tenant_id = $1",
                                tenant_id)
    outbox = await pool.fetchval("SELECT count(*) FROM outbox WHERE tenant_id = $1", tenant_id)
    return inbox, outbox


@pytest.mark.parametrize("source", ["simplyprint", "sendcloud"])
async def test_an_oversized_webhook_is_413_and_stores_nothing(
        api: httpx.AsyncClient, db_pool: Pool, wired: uuid.UUID, source: str) -> None:
    body, headers = oversized(source)
    url = f"/webhooks/{wired}/{source}"
    declared = await api.post(url, content=body, headers=headers)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(body), 1 << 16):
            yield body[start:start + (1 << 16)]

    streamed = await api.post(url, content=chunks(), headers=headers)
    assert streamed.status_code == 413
    assert await stored(db_pool, wired) == (0, 0)
