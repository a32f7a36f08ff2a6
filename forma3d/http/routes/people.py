"""Users and their sessions: sign-in and sign-out, invitations and password resets by one-time
token, and the platform administrator's tenants with their first owner."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forma3d.domain.bounded import CleanText
from forma3d.domain.permissions import OWNER, PLATFORM, SELF
from forma3d.http import auth
from forma3d.http.deps import deps, parse_id, tenant_of
from forma3d.http.principal import require_principal
from forma3d.http.problems import Problem
from forma3d.http.routes.access import grantable, security_event
from forma3d.http.routes.api import api
from forma3d.store import users
from forma3d.store.security import record_security_event
from forma3d.store.tenants import TenantError, create_tenant, find_tenant

TAG = "users"
INVITATION_VALID = timedelta(days=7)
RESET_VALID = timedelta(hours=1)
EMAIL = r"^[^@\s]{1,200}@[^@\s]{1,200}$"


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    invited: bool  # True until the invitation is accepted
    locked_until: datetime | None
    created_at: datetime


def _out(user: users.User) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
            "invited": user.password_hash is None, "locked_until": user.locked_until,
            "created_at": user.created_at}


class Password(BaseModel):
    token: CleanText = Field(min_length=1, max_length=200)
    password: CleanText = Field(min_length=12, max_length=1000)


class SignIn(BaseModel):
    tenant: CleanText = Field(min_length=1, max_length=100, description="the tenant's slug or id")
    email: CleanText = Field(min_length=3, max_length=400)
    password: CleanText = Field(min_length=1, max_length=1000)


class SessionOut(BaseModel):
    kind: str
    id: uuid.UUID | None
    name: str
    tenant_id: uuid.UUID | None
    permissions: list[str]
    csrf_token: str | None = None  # on sign-in: echo it in X-CSRF-Token on every write
    role: str | None = Field(None, description="a signed-in user's role (None for a key)")
    tenant_name: str | None = Field(None, description="the tenant's display name")


class Invitation(BaseModel):
    email: CleanText = Field(pattern=EMAIL)
    name: CleanText = Field(min_length=1, max_length=200)
    role: CleanText = Field(min_length=1, max_length=63)


class TokenOut(BaseModel):
    user_id: uuid.UUID
    email: str
    token: str  # the one-time link's secret, shown this once
    link: str
    expires_at: datetime


class UserPatch(BaseModel):
    name: CleanText | None = Field(default=None, min_length=1, max_length=200)
    role: CleanText | None = Field(default=None, min_length=1, max_length=63)


def _client(request: Request) -> str:
    return auth.client_address(request.scope)


# --- sessions ------------------------------------------------------------------------------

def _session_cookies(response: Response, session_id: str, csrf: str, max_age: int) -> None:
    for name, value, http_only in ((auth.SESSION_COOKIE, session_id, True),
                                   (auth.CSRF_COOKIE, csrf, False)):
        response.set_cookie(name, value, max_age=max_age, path="/", secure=True,
                            httponly=http_only, samesite="strict")


def _clear_cookies(response: Response) -> None:
    for name in (auth.SESSION_COOKIE, auth.CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=True, samesite="strict")


@api.route("POST", "/session", "Sign in: a session cookie (HTTP-only) and its CSRF token",
           body=SignIn, response=SessionOut, status=201, tags=(TAG,), public=True)
async def sign_in(request: Request, body: SignIn) -> Response:
    d = deps(request)
    policy = d.auth.sessions
    tenant = await find_tenant(d.pool, body.tenant)
    user = await users.user_by_email(d.pool, tenant["id"], body.email) if tenant else None
    now = datetime.now(UTC)
    if user is not None and user.locked_until is not None and user.locked_until > now:
        wait = max(1, int((user.locked_until - now).total_seconds() + 0.999))
        await record_security_event(d.pool, user.tenant_id, f"user:{user.id}", "signin.locked",
                                    {"email": user.email}, client=_client(request))
        raise Problem(429, f"too many failed sign-ins: try again in {wait} s",
                      headers={"Retry-After": str(wait)})
    if not await auth.verify_password(user.password_hash if user else None, body.password):
        if user is not None:
            failed = await users.record_failure(d.pool, user.id, policy.failures_before_lockout,
                                                policy.longest_lockout_seconds)
            kind = "signin.lockout" if failed.locked_until else "signin.failed"
            await record_security_event(d.pool, user.tenant_id, f"user:{user.id}", kind,
                                        {"email": user.email, "failures": failed.failed_signins},
                                        client=_client(request))
        raise Problem(401, "wrong tenant, email or password")
    assert user is not None
    await users.record_success(d.pool, user.id)
    session_id, csrf = await auth.start_session(d.redis, policy, user.id, user.tenant_id)
    found = await users.user_for_auth(d.pool, user.id)
    assert found is not None
    principal = auth.user_principal(found, session_id)
    response = JSONResponse(_session_out(principal, csrf, role=user.role,
                                         tenant_name=str(tenant["name"]) if tenant else None),
                            status_code=201)
    _session_cookies(response, session_id, csrf, int(policy.absolute_seconds))
    return response


def _session_out(principal: Any, csrf: str | None = None, role: str | None = None,
                 tenant_name: str | None = None) -> dict[str, Any]:
    return SessionOut(kind=principal.kind, id=principal.id, name=principal.name,
                      tenant_id=principal.tenant_id, permissions=sorted(principal.permissions),
                      csrf_token=csrf, role=role, tenant_name=tenant_name).model_dump(mode="json")


@api.route("GET", "/session", "Who is calling, with what permissions", response=SessionOut,
           tags=(TAG,), permission=SELF)
async def whoami(request: Request) -> dict[str, Any]:
    """Who is calling; the dashboard shows the tenant's name and the user's role from this."""
    principal = require_principal(request)
    pool = deps(request).pool
    user = (await users.get_user(pool, principal.tenant_id, principal.id)
            if principal.kind == "user" and principal.tenant_id and principal.id else None)
    tenant = await find_tenant(pool, str(principal.tenant_id)) if principal.tenant_id else None
    return _session_out(principal, role=user.role if user else None,
                        tenant_name=str(tenant["name"]) if tenant else None)


@api.route("DELETE", "/session", "Sign out (this session)", status=204, tags=(TAG,),
           permission=SELF)
async def sign_out(request: Request) -> Response:
    principal = require_principal(request)
    if principal.session_id is not None:
        await auth.end_session(deps(request).redis, principal.session_id)
    response = Response(status_code=204)
    _clear_cookies(response)
    return response


class EndedOut(BaseModel):
    ended: int


@api.route("POST", "/session/everywhere", "Sign out everywhere: every session of the user ends",
           response=EndedOut, tags=(TAG,), permission=SELF)
async def sign_out_everywhere(request: Request) -> Response:
    principal = require_principal(request)
    if principal.kind != "user" or principal.id is None:
        raise Problem(400, "only a signed-in user has sessions to end")
    ended = await auth.end_all_sessions(deps(request).redis, principal.id)
    response = JSONResponse({"ended": ended})
    _clear_cookies(response)
    return response


# --- users ---------------------------------------------------------------------------------

@api.route("GET", "/users", "The tenant's users", response=list[UserOut], tags=(TAG,),
           permission="users.read")
async def list_users(request: Request) -> list[dict[str, Any]]:
    return [_out(u) for u in await users.list_users(deps(request).pool, tenant_of(request))]


def _token_out(user: users.User, token: str, expires_at: datetime, page: str) -> dict[str, Any]:
    return {"user_id": user.id, "email": user.email, "token": token,
            "link": f"/{page}#token={token}", "expires_at": expires_at}


@api.route("POST", "/invitations", "Invite a user with a role: a one-time link (shown once)",
           body=Invitation, response=TokenOut, status=201, tags=(TAG,),
           permission="users.manage",
           example={"email": "ana@example.com", "name": "Ana", "role": "operator"})
async def invite(request: Request, body: Invitation) -> dict[str, Any]:
    tenant_id = tenant_of(request)
    await grantable(request, tenant_id, body.role, None)
    pool = deps(request).pool
    async with pool.acquire() as conn, conn.transaction():
        user = await users.create_user(conn, tenant_id, body.email, body.name, body.role)
        if user is None:
            raise Problem(409, f"the tenant already has a user {body.email!r}")
        token, expires_at = await users.issue_token(conn, user, "invitation", INVITATION_VALID)
    await security_event(request, "user.invited", {"user_id": str(user.id),
                                                   "email": user.email, "role": user.role})
    return _token_out(user, token, expires_at, "accept-invitation")


@api.route("POST", "/invitations/accept", "Accept an invitation: choose a password",
           body=Password, response=UserOut, tags=(TAG,), public=True)
async def accept_invitation(request: Request, body: Password) -> dict[str, Any]:
    d = deps(request)
    user = await users.use_token(d.pool, body.token, "invitation")
    if user is None:
        raise Problem(404, "this invitation is unknown, used or expired")
    await users.set_password(d.pool, user.id, await auth.hash_password(body.password))
    await auth.changed(d.redis, d.auth)
    await record_security_event(d.pool, user.tenant_id, f"user:{user.id}",
                                "user.invitation_accepted", {}, client=_client(request))
    return _out(user) | {"invited": False}


async def _user(request: Request) -> users.User:
    user_id = parse_id(request.path_params["user_id"], "user")
    found = await users.get_user(deps(request).pool, tenant_of(request), user_id)
    if found is None:
        raise Problem(404, f"user {user_id} not found")
    return found


async def _keep_an_owner(request: Request, user: users.User) -> None:
    if user.role == OWNER and await users.count_owners(deps(request).pool, user.tenant_id) <= 1:
        raise Problem(409, "the tenant's last owner cannot lose the role")


@api.route("PATCH", "/users/{user_id}", "Change a user's name or role", body=UserPatch,
           response=UserOut, tags=(TAG,), permission="users.manage")
async def patch_user(request: Request, body: UserPatch) -> dict[str, Any]:
    user = await _user(request)
    if body.role is not None and body.role != user.role:
        await grantable(request, user.tenant_id, body.role, None)
        await grantable(request, user.tenant_id, user.role, None)  # nor take away more
        await _keep_an_owner(request, user)
    changed = await users.update_user(deps(request).pool, user.tenant_id, user.id,
                                      name=body.name, role=body.role)
    assert changed is not None
    await auth.changed(deps(request).redis, deps(request).auth)
    if body.role is not None and body.role != user.role:
        await security_event(request, "user.role_changed", {
            "user_id": str(user.id), "before": user.role, "after": body.role})
    return _out(changed)


@api.route("DELETE", "/users/{user_id}", "Remove a user (their sessions end)", status=204,
           tags=(TAG,), permission="users.manage")
async def delete_user(request: Request) -> Response:
    user = await _user(request)
    await grantable(request, user.tenant_id, user.role, None)
    await _keep_an_owner(request, user)
    await users.delete_user(deps(request).pool, user.tenant_id, user.id)
    await auth.end_all_sessions(deps(request).redis, user.id)
    await auth.changed(deps(request).redis, deps(request).auth)
    await security_event(request, "user.removed", {"user_id": str(user.id),
                                                   "email": user.email})
    return Response(status_code=204)


@api.route("POST", "/users/{user_id}/password-reset", "Issue a password reset link for a user "
           "(shown once)", response=TokenOut, status=201, tags=(TAG,),
           permission="users.manage")
async def issue_reset(request: Request) -> dict[str, Any]:
    user = await _user(request)
    await grantable(request, user.tenant_id, user.role, None)
    token, expires_at = await users.issue_token(deps(request).pool, user, "password_reset",
                                                RESET_VALID)
    await security_event(request, "user.password_reset_issued", {"user_id": str(user.id)})
    return _token_out(user, token, expires_at, "reset-password")


@api.route("POST", "/password-resets/complete", "Set a new password with a reset link's token "
           "(every session of the user ends)", body=Password, status=204, tags=(TAG,),
           public=True)
async def complete_reset(request: Request, body: Password) -> Response:
    d = deps(request)
    user = await users.use_token(d.pool, body.token, "password_reset")
    if user is None:
        raise Problem(404, "this reset link is unknown, used or expired")
    await users.set_password(d.pool, user.id, await auth.hash_password(body.password))
    await auth.end_all_sessions(d.redis, user.id)
    await auth.changed(d.redis, d.auth)
    await record_security_event(d.pool, user.tenant_id, f"user:{user.id}",
                                "user.password_reset", {}, client=_client(request))
    return Response(status_code=204)


# --- tenants (the platform administrator) --------------------------------------------------

class FirstOwner(BaseModel):
    email: CleanText = Field(pattern=EMAIL)
    name: CleanText = Field(min_length=1, max_length=200)


class TenantIn(BaseModel):
    slug: CleanText = Field(min_length=2, max_length=63)
    name: CleanText | None = Field(default=None, max_length=200)
    owner: FirstOwner


class CreatedTenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    owner: TokenOut  # the first owner's invitation


@api.route("POST", "/tenants", "Platform: create a tenant and invite its first owner",
           body=TenantIn, response=CreatedTenantOut, status=201, tags=("tenants",),
           permission=PLATFORM,
           example={"slug": "acme", "name": "Acme", "owner": {"email": "o@acme.test",
                                                              "name": "Olga"}})
async def create_tenant_route(request: Request, body: TenantIn) -> dict[str, Any]:
    pool = deps(request).pool
    async with pool.acquire() as conn, conn.transaction():
        if await find_tenant(conn, body.slug) is not None:
            raise Problem(409, f"a tenant {body.slug!r} exists already")
        try:
            tenant_id = await create_tenant(conn, body.slug, body.name)
        except TenantError as error:
            raise Problem(422, str(error), errors=[{"field": "slug",
                                                    "message": str(error)}]) from None
        owner = await users.create_user(conn, tenant_id, body.owner.email, body.owner.name,
                                        OWNER)
        assert owner is not None
        token, expires_at = await users.issue_token(conn, owner, "invitation",
                                                    INVITATION_VALID)
    await security_event(request, "tenant.created", {"slug": body.slug,
                                                     "owner": owner.email}, tenant_id)
    return {"id": tenant_id, "slug": body.slug, "name": body.name or body.slug,
            "owner": _token_out(owner, token, expires_at, "accept-invitation")}
