"""Tenant settings by API: read all, change some (checked as a whole by the tenant entity, a bad
value refused naming its field and changing nothing), every setting documented."""

from __future__ import annotations

import uuid

import httpx
import pytest

from forma3d.db.pool import Pool
from forma3d.domain.tenants import TenantSettings

pytestmark = pytest.mark.db


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_settings_are_read_and_changed_with_an_event(
        api: httpx.AsyncClient, api_key: str, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    read = await api.get("/api/v1/tenant/settings", headers=auth(api_key))
    assert read.status_code == 200 and read.json() == TenantSettings().model_dump(mode="json")
    changed = await api.patch("/api/v1/tenant/settings", headers=auth(api_key), json={
        "max_print_attempts": 3, "stock_time_zone": "Europe/Amsterdam",
        "gridflock_required_tags": ["bambu"]})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["max_print_attempts"], body["stock_time_zone"]) == (3, "Europe/Amsterdam")
    assert body["packaging_grams"] == 150  # not named: kept
    assert (await api.get("/api/v1/tenant/settings", headers=auth(api_key))).json() == body
    [event] = await db_pool.fetch("SELECT data FROM event_log WHERE tenant_id = $1"
                                  " AND type = 'tenant.settings-changed'", tenant_id)
    assert event["data"]["after"] == {"max_print_attempts": 3,
                                      "stock_time_zone": "Europe/Amsterdam",
                                      "gridflock_required_tags": ["bambu"]}
    assert event["data"]["before"]["max_print_attempts"] is None
    assert event["data"]["changed_by"].startswith("api key test")
    same = await api.patch("/api/v1/tenant/settings", headers=auth(api_key),
                           json={"max_print_attempts": 3})
    assert same.status_code == 200
    assert await db_pool.fetchval("SELECT count(*) FROM event_log WHERE tenant_id = $1"
                                  " AND type = 'tenant.settings-changed'", tenant_id) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"max_print_attempts": 0}, "max_print_attempts"),
    ({"stock_time_zone": "Mars/Olympus"}, "stock_time_zone"),
    ({"stock_quiet_start": "25:00"}, "stock_quiet_start"),
    ({"gridflock_max_mm": 5000}, "gridflock_max_mm"),
    ({"cancel_printing_jobs": None}, "cancel_printing_jobs"),
    ({"no_such_setting": 1}, "no_such_setting"),
])
async def test_a_bad_value_is_refused_naming_its_field(
        api: httpx.AsyncClient, api_key: str, change: dict[str, object], field: str,
        db_pool: Pool, tenant_id: uuid.UUID) -> None:
    refused = await api.patch("/api/v1/tenant/settings", headers=auth(api_key),
                              json={"packaging_grams": 200, **change})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == [field]
    assert await db_pool.fetchval("SELECT settings FROM tenants WHERE id = $1", tenant_id) in (
        None, {})


async def test_every_setting_is_documented_in_the_openapi_schema(
        api: httpx.AsyncClient) -> None:
    schemas = (await api.get("/api/v1/openapi.json")).json()["components"]["schemas"]
    for name in ("TenantSettings", "TenantSettingsPatch"):
        properties = schemas[name]["properties"]
        assert set(properties) == set(TenantSettings.model_fields)
        undocumented = [k for k, v in properties.items() if not v.get("description")]
        assert undocumented == [], f"{name}: describe {undocumented} in TenantSettings"
