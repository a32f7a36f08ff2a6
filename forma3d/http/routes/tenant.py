"""The calling tenant itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from forma3d.db.pool import record_to_dict
from forma3d.http.deps import deps, tenant_of
from forma3d.http.routes.api import api


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
