"""GridFlock planning choices for a drawer form: the printer profiles a plate set can be sized
for, the tenant's default one, and the drawer sizes the tenant accepts (so a form can say the
range before the preview refuses it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request

from forma3d.domain.gridflock.errors import InvalidGridRequest
from forma3d.domain.gridflock.planner import ConnectorStyle
from forma3d.domain.gridflock.profiles import PROFILES, get_profile
from forma3d.http.deps import deps, tenant_of
from forma3d.http.routes.api import api
from forma3d.store.tenants import tenant_settings

TAG = "gridflock"


class ProfileOut(BaseModel):
    id: str
    code: str = Field(description="the SKU suffix")
    name: str
    bed_x_mm: float
    bed_y_mm: float


class PlanningOut(BaseModel):
    profiles: list[ProfileOut]
    default_profile: str = Field(description="the tenant's GridFlock printer profile")
    connectors: list[ConnectorStyle]
    min_mm: float = Field(description="smallest drawer side the tenant accepts")
    max_mm: float = Field(description="largest drawer side the tenant accepts")


@api.route("GET", "/gridflock/profiles", "The printer profiles a GridFlock plate set can be "
           "planned for, the tenant's default and its accepted drawer sizes",
           response=PlanningOut, tags=(TAG,), permission="gridflock.read")
async def planning_choices(request: Request) -> dict[str, Any]:
    settings = await tenant_settings(deps(request).pool, tenant_of(request))
    try:
        default = get_profile(settings.gridflock_printer_profile).id
    except InvalidGridRequest:
        default = next(iter(PROFILES))
    return {
        "profiles": [{"id": p.id, "code": p.code, "name": p.name, "bed_x_mm": p.bed_x_mm,
                      "bed_y_mm": p.bed_y_mm} for p in PROFILES.values()],
        "default_profile": default,
        "connectors": list(ConnectorStyle),
        "min_mm": settings.gridflock_min_mm,
        "max_mm": settings.gridflock_max_mm,
    }
