"""The calling tenant itself, and its settings (every one documented in the OpenAPI schema from
TenantSettings, checked as a whole by the tenant entity)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo
from starlette.requests import Request

from forma3d.db.pool import record_to_dict
from forma3d.domain.tenants import TenantSettings
from forma3d.http.deps import ask, deps, tenant_of, who
from forma3d.http.routes.api import api
from forma3d.messaging.tenant import UpdateTenantSettings
from forma3d.store.tenants import tenant_settings


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime


@api.route("GET", "/tenant", "The tenant this API key belongs to", response=TenantOut,
           tags=("tenant",),
           permission="tenant.read")
async def get_tenant(request: Request) -> dict[str, Any]:
    row = await deps(request).pool.fetchrow("SELECT * FROM tenants WHERE id = $1",
                                            tenant_of(request))
    return record_to_dict(row)


def _patch_model() -> type[BaseModel]:
    """TenantSettings with every field optional: a PATCH names only what it changes (with the
    same constraints and descriptions); unknown names are refused."""
    fields: dict[str, Any] = {
        name: (Optional[field.annotation],  # noqa: UP045 - a runtime type, not a hint
               FieldInfo.merge_field_infos(field, default=None, default_factory=None))
        for name, field in TenantSettings.model_fields.items()}
    model: type[BaseModel] = create_model(
        "TenantSettingsPatch", __config__=ConfigDict(extra="forbid"), **fields)
    model.__doc__ = "The settings to change; a setting left out keeps its value."
    return model


TenantSettingsPatch = _patch_model()


@api.route("GET", "/tenant/settings", "The tenant's settings (each one described)",
           response=TenantSettings, tags=("tenant",), permission="tenant.read")
async def get_settings(request: Request) -> TenantSettings:
    return await tenant_settings(deps(request).pool, tenant_of(request))


@api.route("PATCH", "/tenant/settings", "Change settings: only those named; a bad value is "
           "refused naming its field, and nothing changes", body=TenantSettingsPatch,
           response=TenantSettings, tags=("tenant",), permission="tenant.configure",
           example={"max_print_attempts": 3, "stock_time_zone": "Europe/Amsterdam"})
async def patch_settings(request: Request, body: BaseModel) -> dict[str, Any]:
    changes = body.model_dump(mode="json", exclude_unset=True)
    answer: dict[str, Any] = await ask(request, UpdateTenantSettings(
        tenant_id=tenant_of(request), changes=changes, by=await who(request)))
    return answer
