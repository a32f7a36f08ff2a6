"""The whole route table against every built-in role, a key without scopes, a full-power
(unscoped, pre-roles) key and the platform key: 403 problem+json without the permission, never
403 with it, and no route without a declared permission."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from actors.local import LocalEntities
from forma3d.db.pool import Pool
from forma3d.domain.permissions import BUILTIN_ROLES, PLATFORM, SELF
from forma3d.http import auth
from forma3d.http.app import build_app
from forma3d.http.auth import AuthState
from forma3d.http.deps import Deps
from forma3d.http.routes.api import API_PREFIX, api
from forma3d.http.routing import ApiRouter, Endpoint, UndeclaredPermission
from forma3d.store.apikeys import create_api_key
from tests.forma3d.http.asgi import first_response

PLATFORM_KEY = "platform-" + uuid.uuid4().hex
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Caller:
    name: str
    key: str
    holds: frozenset[str]


@pytest.fixture
async def app(db_pool: Pool, redis_url: str,
              entities: LocalEntities) -> AsyncIterator[Starlette]:
    redis = aioredis.from_url(redis_url)
    deps = Deps(db_pool, redis, entities=entities, auth=AuthState(platform_key=PLATFORM_KEY))
    deps.limits.enabled = False  # hundreds of requests a second: rate limits have their tests
    yield build_app(deps)
    await redis.aclose()


@pytest.fixture
async def callers(db_pool: Pool, tenant_id: uuid.UUID) -> list[Caller]:
    known = auth.declared_permissions()
    out = []
    for role in BUILTIN_ROLES:
        key = (await create_api_key(db_pool, tenant_id, role, role=role)).key
        out.append(Caller(role, key, auth.role_grants(role, None)))
    unscoped = (await create_api_key(db_pool, tenant_id, "no scopes", permissions=[])).key
    out.append(Caller("key without scopes", unscoped, frozenset()))
    legacy = (await create_api_key(db_pool, tenant_id, "pre-roles")).key
    out.append(Caller("pre-roles key", legacy, known))
    out.append(Caller("platform", PLATFORM_KEY, known | {PLATFORM}))
    return out


def _path(endpoint: Endpoint) -> str:
    parts = []
    for part in endpoint.path.split("/"):
        if part.startswith("{"):
            name = part[1:-1].split(":")[0]
            part = str(uuid.uuid4()) if name.endswith("_id") else {
                "number": "1", "kind": "stl"}.get(name, "x")
        parts.append(part)
    return API_PREFIX + "/".join(parts)


def test_every_route_declares_a_permission() -> None:
    api.check_permissions()
    known = auth.declared_permissions() | {SELF, PLATFORM}
    for e in api.endpoints:
        assert e.public or e.permission in known, f"{e.method} {e.path}"
    # The catalog's built-in roles differ: a viewer holds reads only, an owner everything.
    viewer = auth.role_grants("viewer", None)
    assert viewer and all(p.endswith(".read") for p in viewer)
    assert "users.read" not in viewer and "print_jobs.force_status" not in viewer
    assert auth.role_grants("owner", None) == auth.declared_permissions()
    assert "print_jobs.force_status" not in auth.role_grants("operator", None)
    assert "mappings.write" in auth.role_grants("catalogue_manager", None)


def test_a_route_without_a_permission_stops_the_app_from_starting() -> None:
    router = ApiRouter()

    async def handler() -> None: ...

    router.route("GET", "/declared", "x", permission="things.read")(handler)
    router.route("POST", "/forgotten", "x")(handler)
    with pytest.raises(UndeclaredPermission, match="POST /forgotten"):
        router.routes()


async def test_route_table_against_every_role(app: Starlette, tenant_id: uuid.UUID,
                                              callers: list[Caller]) -> None:
    walked = 0
    for e in api.endpoints:
        if e.public:
            continue
        body = b"{}" if e.method in ("POST", "PUT", "PATCH") else b""
        for caller in callers:
            headers = {"Authorization": f"Bearer {caller.key}"}
            if caller.name == "platform":
                headers[auth.PLATFORM_TENANT_HEADER] = str(tenant_id)
            status, answer = await first_response(app, e.method, _path(e), headers, body)
            allowed = e.permission == SELF or e.permission in caller.holds
            where = f"{caller.name}: {e.method} {e.path} ({e.permission}) -> {status}"
            if allowed:
                assert status != 403, where
                assert status not in (401, 500), where
            else:
                assert status == 403, where
                assert answer["content-type"] == PROBLEM, where
            walked += 1
    assert walked >= 8 * 90


async def test_refused_before_the_body_is_read(app: Starlette, db_pool: Pool,
                                                tenant_id: uuid.UUID) -> None:
    viewer = (await create_api_key(db_pool, tenant_id, "v", role="viewer")).key
    headers = {"Authorization": f"Bearer {viewer}"}
    status, _ = await first_response(app, "POST", "/api/v1/printers", headers, b"{not json")
    assert status == 403
    status, _ = await first_response(app, "POST", "/api/v1/printers", headers, b"x" * (2 << 20))
    assert status == 403
    owner = (await create_api_key(db_pool, tenant_id, "o", role="owner")).key
    status, _ = await first_response(app, "POST", "/api/v1/printers",
                                     {"Authorization": f"Bearer {owner}"}, b"{not json")
    assert status == 400
