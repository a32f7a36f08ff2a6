"""Users over HTTP: invitation, sign-in and sign-out, idle and absolute expiry, sign-out
everywhere, lockout with a growing delay, password reset, CSRF on cookie writes, and the
platform administrator creating a tenant with its first owner."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import redis.asyncio as aioredis

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.http import auth as sessions
from forma3d.http.app import build_app
from forma3d.http.auth import AuthState, SessionPolicy
from forma3d.http.deps import Deps
from tests.polling import eventually

# Security events are the audit trail's `security` rows, seen here as (kind, actor, detail).
SECURITY_EVENTS = """(SELECT id, tenant_id, action AS kind, after AS detail,
                             CASE WHEN actor_id IS NULL THEN actor_kind
                                  ELSE actor_kind || ':' || actor_id END AS actor
                        FROM audit_log WHERE category = 'security') AS security_events"""

PASSWORD = "correct horse battery staple"
PLATFORM_KEY = "platform-" + uuid.uuid4().hex


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Browser:
    """A signed-in browser: its cookies sent by hand (the test host has no dot, which the
    standard cookie jar treats specially)."""

    cookie: str
    csrf: str

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"{sessions.SESSION_COOKIE}={self.cookie}; "
                             f"{sessions.CSRF_COOKIE}={self.csrf}"}
        if csrf:
            headers[sessions.CSRF_HEADER] = self.csrf
        return headers


@pytest.fixture
async def deps(db_pool: Pool, redis_url: str,
               entities: LocalEntities) -> AsyncIterator[Deps]:
    redis = aioredis.from_url(redis_url)
    yield Deps(db_pool, redis, entities=entities, auth=AuthState(platform_key=PLATFORM_KEY))
    await redis.aclose()


@pytest.fixture
async def web(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(deps))
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        yield client


@pytest.fixture
async def slug(db_pool: Pool, tenant_id: uuid.UUID) -> str:
    found: str = await db_pool.fetchval("SELECT slug FROM tenants WHERE id = $1", tenant_id)
    return found


async def invite(web: httpx.AsyncClient, key: str, email: str, role: str = "operator"
                 ) -> dict[str, str]:
    invited = await web.post("/api/v1/invitations", headers=auth(key),
                             json={"email": email, "name": "Ana", "role": role})
    assert invited.status_code == 201, invited.text
    body: dict[str, str] = invited.json()
    accepted = await web.post("/api/v1/invitations/accept",
                              json={"token": body["token"], "password": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["invited"] is False and accepted.json()["role"] == role
    return body


async def sign_in(web: httpx.AsyncClient, slug: str, email: str,
                  password: str = PASSWORD) -> Browser:
    response = await web.post("/api/v1/session",
                              json={"tenant": slug, "email": email, "password": password})
    assert response.status_code == 201, response.text
    set_cookie = response.headers.get_list("set-cookie")
    session = next(c for c in set_cookie if c.startswith(sessions.SESSION_COOKIE + "="))
    for flag in ("HttpOnly", "Secure", "SameSite=strict"):
        assert flag.lower() in session.lower(), session
    csrf_cookie = next(c for c in set_cookie if c.startswith(sessions.CSRF_COOKIE + "="))
    assert "httponly" not in csrf_cookie.lower()  # the page reads it to send the header
    return Browser(response.cookies[sessions.SESSION_COOKIE], response.json()["csrf_token"])


async def test_invitation_sign_in_csrf_and_sign_out(web: httpx.AsyncClient, api_key: str,
                                                    slug: str) -> None:
    invitation = await invite(web, api_key, "ana@example.com")
    reused = await web.post("/api/v1/invitations/accept",
                            json={"token": invitation["token"], "password": PASSWORD + "x"})
    assert reused.status_code == 404  # one-time

    browser = await sign_in(web, slug, "ANA@example.com")
    me = await web.get("/api/v1/session", headers=browser.headers(csrf=False))
    assert me.status_code == 200 and me.json()["kind"] == "user"
    assert "print_jobs.clear" in me.json()["permissions"]
    assert "users.manage" not in me.json()["permissions"]  # an operator
    assert (await web.get("/api/v1/printers", headers=browser.headers(False))).status_code == 200
    assert (await web.get("/api/v1/users", headers=browser.headers(False))).status_code == 403

    no_csrf = await web.post("/api/v1/print-jobs/clear-finished",
                             headers=browser.headers(csrf=False))
    assert no_csrf.status_code == 403 and "csrf" in no_csrf.json()["detail"].lower()
    wrong = {**browser.headers(), sessions.CSRF_HEADER: "guess"}
    assert (await web.post("/api/v1/print-jobs/clear-finished", headers=wrong)
            ).status_code == 403
    done = await web.post("/api/v1/print-jobs/clear-finished", headers=browser.headers())
    assert done.status_code == 200, done.text

    out = await web.delete("/api/v1/session", headers=browser.headers())
    assert out.status_code == 204
    after = await web.get("/api/v1/session", headers=browser.headers(False))
    assert after.status_code == 401


async def test_wrong_password_and_unknown_user_look_alike(web: httpx.AsyncClient, api_key: str,
                                                          slug: str) -> None:
    await invite(web, api_key, "bo@example.com")
    for tenant, email, password in ((slug, "bo@example.com", "wrong password!"),
                                    (slug, "nobody@example.com", PASSWORD),
                                    ("no-such-tenant", "bo@example.com", PASSWORD)):
        response = await web.post("/api/v1/session", json={
            "tenant": tenant, "email": email, "password": password})
        assert response.status_code == 401
        assert response.json()["detail"] == "wrong tenant, email or password"


async def test_idle_and_absolute_expiry(web: httpx.AsyncClient, deps: Deps, api_key: str,
                                        slug: str) -> None:
    await invite(web, api_key, "cy@example.com")
    deps.auth.sessions = SessionPolicy(idle_seconds=0.5)
    idle = await sign_in(web, slug, "cy@example.com")
    assert (await web.get("/api/v1/session", headers=idle.headers(False))).status_code == 200

    async def ended(browser: Browser) -> bool:
        return (await web.get("/api/v1/session", headers=browser.headers(False))
                ).status_code == 401

    # Unused (only looked at in Redis, which does not refresh it), it lapses after 0.5 s.
    idle_key = f"forma3d:session:{sessions._hash(idle.cookie)}"

    async def lapsed() -> bool:
        return not await deps.redis.exists(idle_key)

    await eventually(lapsed, timeout=10, interval=0.1, what="idle expiry")
    assert await ended(idle)

    deps.auth.sessions = SessionPolicy(absolute_seconds=3600)
    held = await sign_in(web, slug, "cy@example.com")
    assert not await ended(held)
    # Used all along, but started longer ago than the absolute limit.
    key = f"forma3d:session:{sessions._hash(held.cookie)}"
    value = json.loads(await deps.redis.get(key))
    value["started"] -= 3601
    await deps.redis.set(key, json.dumps(value), keepttl=True)
    assert await ended(held)


async def test_sign_out_everywhere(web: httpx.AsyncClient, api_key: str, slug: str) -> None:
    await invite(web, api_key, "di@example.com")
    laptop = await sign_in(web, slug, "di@example.com")
    phone = await sign_in(web, slug, "di@example.com")
    everywhere = await web.post("/api/v1/session/everywhere", headers=phone.headers())
    assert everywhere.status_code == 200 and everywhere.json()["ended"] == 2
    for browser in (laptop, phone):
        assert (await web.get("/api/v1/session", headers=browser.headers(False))
                ).status_code == 401


async def test_lockout_grows_and_ends(web: httpx.AsyncClient, api_key: str, slug: str,
                                      db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await invite(web, api_key, "ed@example.com")
    attempt = {"tenant": slug, "email": "ed@example.com", "password": "not the password"}
    for _ in range(5):
        assert (await web.post("/api/v1/session", json=attempt)).status_code == 401
    right = {**attempt, "password": PASSWORD}
    locked = await web.post("/api/v1/session", json=right)
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1
    first_lock = await db_pool.fetchval(
        "SELECT locked_until - now() FROM users WHERE lower(email) = 'ed@example.com'")

    # The lock lapses; one more failure locks for twice as long.
    await db_pool.execute("UPDATE users SET locked_until = now() - interval '1 s' "
                          "WHERE tenant_id = $1", tenant_id)
    assert (await web.post("/api/v1/session", json=attempt)).status_code == 401
    second_lock = await db_pool.fetchval(
        "SELECT locked_until - now() FROM users WHERE lower(email) = 'ed@example.com'")
    assert second_lock > first_lock

    await db_pool.execute("UPDATE users SET locked_until = now() - interval '1 s' "
                          "WHERE tenant_id = $1", tenant_id)
    await sign_in(web, slug, "ed@example.com")  # and the count starts again
    assert await db_pool.fetchval(
        "SELECT failed_signins FROM users WHERE tenant_id = $1", tenant_id) == 0
    kinds = {r["kind"] for r in await db_pool.fetch(
        f"SELECT kind FROM {SECURITY_EVENTS} WHERE tenant_id = $1", tenant_id)}
    assert {"signin.failed", "signin.lockout", "signin.locked", "user.invited"} <= kinds


async def test_password_reset(web: httpx.AsyncClient, api_key: str, slug: str) -> None:
    invitation = await invite(web, api_key, "fa@example.com")
    browser = await sign_in(web, slug, "fa@example.com")
    issued = await web.post(f"/api/v1/users/{invitation['user_id']}/password-reset",
                            headers=auth(api_key))
    assert issued.status_code == 201
    token = issued.json()["token"]
    short = await web.post("/api/v1/password-resets/complete",
                           json={"token": token, "password": "short"})
    assert short.status_code == 422
    done = await web.post("/api/v1/password-resets/complete",
                          json={"token": token, "password": "a brand new passphrase"})
    assert done.status_code == 204
    again = await web.post("/api/v1/password-resets/complete",
                           json={"token": token, "password": "another new passphrase"})
    assert again.status_code == 404
    assert (await web.get("/api/v1/session", headers=browser.headers(False))).status_code == 401
    old = await web.post("/api/v1/session", json={
        "tenant": slug, "email": "fa@example.com", "password": PASSWORD})
    assert old.status_code == 401
    await sign_in(web, slug, "fa@example.com", "a brand new passphrase")


async def test_platform_creates_a_tenant_and_its_owner(web: httpx.AsyncClient, api_key: str,
                                                       db_pool: Pool) -> None:
    slug = f"p-{uuid.uuid4().hex[:10]}"
    body = {"slug": slug, "name": "Acme", "owner": {"email": "o@acme.test", "name": "Olga"}}
    assert (await web.post("/api/v1/tenants", headers=auth(api_key), json=body)
            ).status_code == 403  # a tenant's owner key is not the platform
    created = await web.post("/api/v1/tenants", headers=auth(PLATFORM_KEY), json=body)
    assert created.status_code == 201, created.text
    tenant_id = created.json()["id"]
    accepted = await web.post("/api/v1/invitations/accept", json={
        "token": created.json()["owner"]["token"], "password": PASSWORD})
    assert accepted.status_code == 200 and accepted.json()["role"] == "owner"
    owner = await sign_in(web, slug, "o@acme.test")
    made = await web.post("/api/v1/api-keys", headers=owner.headers(),
                          json={"name": "first", "role": "admin"})
    assert made.status_code == 201
    duplicate = await web.post("/api/v1/tenants", headers=auth(PLATFORM_KEY), json=body)
    assert duplicate.status_code == 409
    # The platform acts in a tenant only by naming it, and every such write is recorded.
    assert (await web.get("/api/v1/printers", headers=auth(PLATFORM_KEY))).status_code == 400
    nowhere = {**auth(PLATFORM_KEY), sessions.PLATFORM_TENANT_HEADER: str(uuid.uuid4())}
    assert (await web.post("/api/v1/printers", headers=nowhere, json={"name": "P1"})
            ).status_code == 404
    acting = {**auth(PLATFORM_KEY), sessions.PLATFORM_TENANT_HEADER: tenant_id}
    assert (await web.post("/api/v1/printers", headers=acting, json={"name": "P1"})
            ).status_code == 201
    recorded = await db_pool.fetch(
        f"SELECT kind, actor, detail FROM {SECURITY_EVENTS} WHERE tenant_id = $1 ORDER BY id",
        uuid.UUID(tenant_id))
    assert [r["kind"] for r in recorded if r["actor"] == "platform"] == [
        "tenant.created", "platform.request"]
    assert recorded[-1]["detail"] == {"method": "POST", "path": "/api/v1/printers",
                                      "status": 201}
    outside = await db_pool.fetch(
        f"""SELECT detail FROM {SECURITY_EVENTS} WHERE tenant_id IS NULL AND actor = 'platform'
             AND detail->>'path' = '/api/v1/tenants' ORDER BY id DESC LIMIT 2""")
    assert [r["detail"]["status"] for r in outside] == [409, 201]


async def test_a_signed_in_users_writes_name_them_and_the_session_gives_role_and_tenant(
        web: httpx.AsyncClient, api_key: str, slug: str, db_pool: Pool,
        tenant_id: uuid.UUID) -> None:
    await invite(web, api_key, "owner@example.com", role="owner")
    browser = await sign_in(web, slug, "owner@example.com")
    me = (await web.get("/api/v1/session", headers=browser.headers(False))).json()
    tenant_name = await db_pool.fetchval("SELECT name FROM tenants WHERE id = $1", tenant_id)
    assert (me["role"], me["tenant_name"]) == ("owner", tenant_name)
    changed = await web.patch("/api/v1/tenant/settings", headers=browser.headers(),
                              json={"max_print_attempts": 4})
    assert changed.status_code == 200, changed.text
    by = await db_pool.fetchval("SELECT data->>'changed_by' FROM event_log WHERE tenant_id = $1"
                                " AND type = 'tenant.settings-changed'", tenant_id)
    assert by == "user owner@example.com"  # not "unknown key": the session's user
    keyed = (await web.get("/api/v1/session", headers=auth(api_key))).json()
    assert keyed["role"] is None and keyed["tenant_name"] == tenant_name
