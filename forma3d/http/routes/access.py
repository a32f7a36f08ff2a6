"""Who may do what: roles (the five built in and a tenant's own) and API keys, managed.

Nobody grants more than they hold: a role, key or user role carrying a permission the caller
lacks is refused (403). Every change bumps the authentication epoch, so every replica drops its
cached keys and users within a fraction of a second."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.bounded import CleanText
from forma3d.domain.permissions import (
    BUILTIN_ROLES,
    PERMISSIONS,
    builtin_permissions,
    escalation,
    unknown,
)
from forma3d.http import auth
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.principal import require_principal
from forma3d.http.problems import Problem
from forma3d.http.routes.api import api
from forma3d.store import apikeys, roles
from forma3d.store.security import record_security_event

ROLES_TAG = "roles"
KEYS_TAG = "api-keys"
ROLE_NAME = r"^[a-z][a-z0-9_-]{1,62}$"


async def security_event(request: Request, kind: str, detail: dict[str, Any],
                         tenant_id: uuid.UUID | None = None) -> None:
    """Record a security event of this request's principal (and tell replicas to re-read)."""
    principal = require_principal(request)
    await record_security_event(
        deps(request).pool, tenant_id or principal.tenant_id, principal.actor, kind, detail,
        client=auth.client_address(request.scope),
        request_id=request.scope.get("state", {}).get("request_id"))


async def grantable(request: Request, tenant_id: uuid.UUID, role: str | None,
                    permissions: list[str] | None) -> frozenset[str]:
    """What a role name or a permission list grants, refused when unknown (422) or more than
    the caller holds (403)."""
    known = auth.declared_permissions()
    if permissions is not None:
        bad = unknown(permissions, known)
        if bad:
            raise Problem(422, f"unknown permission(s): {', '.join(bad)}", errors=[
                {"field": "permissions", "message": f"{p!r} is not a permission"} for p in bad])
        granted = frozenset(permissions)
    elif role in BUILTIN_ROLES:
        granted = builtin_permissions(role, known)
    else:
        custom = await roles.role_by_name(deps(request).pool, tenant_id, role or "")
        if custom is None:
            raise Problem(422, f"no role {role!r}", errors=[
                {"field": "role", "message": f"{role!r} is neither built in nor the tenant's"}])
        granted = frozenset(custom.permissions) & known
    beyond = escalation(granted, require_principal(request).permissions)
    if beyond:
        raise Problem(403, "nobody grants a permission they do not hold: "
                      + ", ".join(beyond))
    return granted


# --- roles ---------------------------------------------------------------------------------

class RoleOut(BaseModel):
    id: uuid.UUID | None  # None for a built-in role
    name: str
    description: str
    builtin: bool
    permissions: list[str]


class RoleIn(BaseModel):
    name: CleanText = Field(pattern=ROLE_NAME)
    description: CleanText = Field(default="", max_length=500)
    permissions: list[CleanText] = Field(max_length=500)


class RolePatch(BaseModel):
    description: CleanText | None = Field(default=None, max_length=500)
    permissions: list[CleanText] | None = Field(default=None, max_length=500)


class PermissionOut(BaseModel):
    name: str
    description: str


@api.route("GET", "/permissions", "Every permission a role or key can hold",
           response=list[PermissionOut], tags=(ROLES_TAG,), permission="roles.read")
async def list_permissions(request: Request) -> list[dict[str, str]]:
    return [{"name": p, "description": PERMISSIONS.get(p, "")}
            for p in sorted(auth.declared_permissions())]


@api.route("GET", "/roles", "The built-in roles and the tenant's own", response=list[RoleOut],
           tags=(ROLES_TAG,), permission="roles.read")
async def list_roles(request: Request) -> list[dict[str, Any]]:
    known = auth.declared_permissions()
    out: list[dict[str, Any]] = [
        {"id": None, "name": r.name, "description": r.description, "builtin": True,
         "permissions": sorted(builtin_permissions(r.name, known))}
        for r in BUILTIN_ROLES.values()]
    for custom in await roles.list_roles(deps(request).pool, tenant_of(request)):
        out.append({"id": custom.id, "name": custom.name, "description": custom.description,
                    "builtin": False, "permissions": custom.permissions})
    return out


def _custom(role: roles.CustomRole) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "description": role.description,
            "builtin": False, "permissions": role.permissions}


@api.route("POST", "/roles", "Create a custom role", body=RoleIn, response=RoleOut, status=201,
           tags=(ROLES_TAG,), permission="roles.manage",
           example={"name": "shipper", "permissions": ["orders.read", "shipments.retry"]})
async def create_role(request: Request, body: RoleIn) -> dict[str, Any]:
    tenant_id = tenant_of(request)
    if body.name in BUILTIN_ROLES:
        raise Problem(409, f"{body.name!r} is a built-in role")
    await grantable(request, tenant_id, None, body.permissions)
    created = await roles.create_role(deps(request).pool, tenant_id, body.name,
                                      body.description, body.permissions)
    if created is None:
        raise Problem(409, f"the tenant already has a role {body.name!r}")
    await security_event(request, "role.created", {"role": body.name,
                                                   "permissions": created.permissions})
    return _custom(created)


async def _role(request: Request) -> roles.CustomRole:
    role_id = parse_id(request.path_params["role_id"], "role")
    found = await roles.get_role(deps(request).pool, tenant_of(request), role_id)
    if found is None:
        raise Problem(404, f"role {role_id} not found")
    return found


@api.route("PATCH", "/roles/{role_id}", "Change a custom role's description or permissions",
           body=RolePatch, response=RoleOut, tags=(ROLES_TAG,), permission="roles.manage")
async def patch_role(request: Request, body: RolePatch) -> dict[str, Any]:
    found = await _role(request)
    if body.permissions is not None:
        await grantable(request, found.tenant_id, None, body.permissions)
    changed = await roles.update_role(deps(request).pool, found.tenant_id, found.id,
                                      description=body.description,
                                      permissions=body.permissions)
    if changed is None:
        raise Problem(404, f"role {found.id} not found")
    await auth.changed(deps(request).redis, deps(request).auth)
    await security_event(request, "role.changed", {
        "role": found.name, "before": found.permissions, "after": changed.permissions})
    return _custom(changed)


@api.route("DELETE", "/roles/{role_id}", "Delete a custom role no user or live key holds",
           status=204, tags=(ROLES_TAG,), permission="roles.manage")
async def delete_role(request: Request) -> Response:
    found = await _role(request)
    pool = deps(request).pool
    if await roles.role_in_use(pool, found.tenant_id, found.name):
        raise Problem(409, f"role {found.name!r} is held by a user or a live API key")
    await roles.delete_role(pool, found.tenant_id, found.id)
    await auth.changed(deps(request).redis, deps(request).auth)
    await security_event(request, "role.deleted", {"role": found.name})
    return Response(status_code=204)


# --- API keys ------------------------------------------------------------------------------

class ApiKeyIn(BaseModel):
    name: CleanText = Field(min_length=1, max_length=200)
    role: CleanText | None = Field(default=None, max_length=63)
    permissions: list[CleanText] | None = Field(default=None, max_length=500)
    expires_at: datetime | None = None
    allowed_cidrs: list[CleanText] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _one_scope(self) -> ApiKeyIn:
        if (self.role is None) == (self.permissions is None):
            raise ValueError("give either a role or a list of permissions")
        return self

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("give a time zone (e.g. 2030-01-01T00:00:00Z)")
            if value <= datetime.now(UTC):
                raise ValueError("must be in the future")
        return value

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return auth.parse_cidrs(value)


class CreatedKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    key: str  # shown this once
    role: str | None
    permissions: list[str] | None
    expires_at: datetime | None
    allowed_cidrs: list[str]


class RotatedKeyOut(BaseModel):
    id: uuid.UUID
    key: str  # shown this once; the previous secret no longer works


@api.route("GET", "/api-keys", "The tenant's API keys (never their secrets)",
           response=list[apikeys.KeyInfo], tags=(KEYS_TAG,), permission="api_keys.read")
async def list_api_keys(request: Request) -> list[dict[str, Any]]:
    return [asdict(k) for k in await apikeys.list_keys(deps(request).pool, tenant_of(request))]


@api.route("POST", "/api-keys", "Create an API key with a role or a list of permissions; its "
           "secret is answered this once", body=ApiKeyIn, response=CreatedKeyOut, status=201,
           tags=(KEYS_TAG,), permission="api_keys.manage",
           example={"name": "dashboard", "role": "viewer"})
async def create_api_key(request: Request, body: ApiKeyIn) -> dict[str, Any]:
    tenant_id = tenant_of(request)
    await grantable(request, tenant_id, body.role, body.permissions)
    created = await apikeys.create_api_key(
        deps(request).pool, tenant_id, body.name, role=body.role,
        permissions=sorted(set(body.permissions)) if body.permissions is not None else None,
        expires_at=body.expires_at, allowed_cidrs=body.allowed_cidrs)
    await security_event(request, "api_key.created", {
        "key_id": str(created.id), "name": body.name, "role": body.role,
        "permissions": body.permissions})
    return {"id": created.id, "name": created.name, "key": created.key, "role": body.role,
            "permissions": body.permissions, "expires_at": body.expires_at,
            "allowed_cidrs": body.allowed_cidrs}


@api.route("DELETE", "/api-keys/{key_id}", "Revoke an API key (refused everywhere within a "
           "second)", status=204, tags=(KEYS_TAG,), permission="api_keys.manage")
async def revoke_api_key(request: Request) -> Response:
    key_id = parse_id(request.path_params["key_id"], "API key")
    if not await apikeys.revoke_key(deps(request).pool, tenant_of(request), key_id):
        raise Problem(404, f"API key {key_id} not found (or already revoked)")
    await auth.changed(deps(request).redis, deps(request).auth)
    await security_event(request, "api_key.revoked", {"key_id": str(key_id)})
    return Response(status_code=204)


@api.route("POST", "/api-keys/{key_id}/rotate", "Give an API key a new secret (answered this "
           "once); the old one stops working", response=RotatedKeyOut, tags=(KEYS_TAG,),
           permission="api_keys.manage")
async def rotate_api_key(request: Request) -> dict[str, Any]:
    key_id = parse_id(request.path_params["key_id"], "API key")
    secret = await apikeys.rotate_key(deps(request).pool, tenant_of(request), key_id)
    if secret is None:
        raise Problem(404, f"API key {key_id} not found (or revoked)")
    await auth.changed(deps(request).redis, deps(request).auth)
    await security_event(request, "api_key.rotated", {"key_id": str(key_id)})
    return {"id": key_id, "key": secret}
