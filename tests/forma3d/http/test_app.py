from __future__ import annotations

import posixpath
import re
import uuid

import httpx

from forma3d.db.pool import Pool
from forma3d.store.apikeys import create_api_key
from forma3d.store.tenants import create_tenant

PROBLEM = "application/problem+json"
# What would make the page load something from another host (an example address shown as a
# placeholder is not a load).
LOADS_EXTERNAL = re.compile(
    r"""(?:\bfrom|\bimport\(|\bsrc=|\bhref=|url\(|fetch\(|@import)\s*["'`]?(?:https?:)?//""")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_no_key_is_401_problem(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/printers")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized"
    assert "API key" in body["detail"]


async def test_wrong_key_is_401(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/printers", headers=auth("f3d_not-a-real-key"))
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid API key"


async def test_other_tenants_objects_are_404(
    api: httpx.AsyncClient, db_pool: Pool, api_key: str
) -> None:
    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    other_key = (await create_api_key(db_pool, other, "other")).key
    created = await api.post(
        "/api/v1/printers",
        headers=auth(api_key),
        json={
            "name": "MK4-01",
            "model": "MK4",
            "nozzle_diameter": "0.4",
            "tags": ["pla"],
            "materials": [{"slot": 0, "type": "PLA", "color": "black"}],
        },
    )
    assert created.status_code == 201, created.text
    printer = created.json()
    assert printer["nozzle_diameter"] == "0.40"

    mine = await api.get(f"/api/v1/printers/{printer['id']}", headers=auth(api_key))
    assert mine.status_code == 200 and mine.json()["name"] == "MK4-01"

    theirs = await api.get(f"/api/v1/printers/{printer['id']}", headers=auth(other_key))
    assert theirs.status_code == 404
    assert theirs.headers["content-type"] == PROBLEM
    listed = await api.get("/api/v1/printers", headers=auth(other_key))
    assert listed.status_code == 200 and listed.json() == []
    patched = await api.patch(
        f"/api/v1/printers/{printer['id']}", headers=auth(other_key), json={"name": "stolen"}
    )
    assert patched.status_code == 404


async def test_request_id_in_and_out(api: httpx.AsyncClient) -> None:
    echoed = await api.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await api.get("/health/live")
    assert len(made.headers["x-request-id"]) == 32
    unsafe = await api.get("/health/live", headers={"X-Request-ID": "a b<script>"})
    assert unsafe.headers["x-request-id"] != "a b<script>"


async def test_bad_bodies_are_4xx_problems(api: httpx.AsyncClient, api_key: str) -> None:
    headers = {**auth(api_key), "content-type": "application/json"}
    malformed = await api.post("/api/v1/printers", headers=headers, content=b"{nope")
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["detail"]

    invalid = await api.post(
        "/api/v1/printers",
        headers=auth(api_key),
        json={"name": "", "nozzle_diameter": "9", "colour": "red"},
    )
    assert invalid.status_code == 422
    fields = {e["field"] for e in invalid.json()["errors"]}
    assert {"name", "nozzle_diameter", "colour"} <= fields

    huge = await api.post(
        "/api/v1/printers", headers=headers, content=b'{"name": "' + b"x" * (2 << 20) + b'"}'
    )
    assert huge.status_code == 413 and huge.headers["content-type"] == PROBLEM

    listed = await api.get("/api/v1/printers", headers=auth(api_key))
    assert listed.json() == []  # nothing was created by any of the bad requests


async def test_openapi_is_generated_from_models(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    post = doc["paths"]["/api/v1/printers"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PrinterIn"
    }
    assert "nozzle_diameter" in doc["components"]["schemas"]["PrinterIn"]["properties"]
    assert "/api/v1/printers/{printer_id}" in doc["paths"]


async def test_dashboard_is_served_without_a_key_and_needs_no_cdn(
        api: httpx.AsyncClient) -> None:
    """The shell and every module it imports, transitively, come from the app itself."""
    response = await api.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    pending = re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text)
    assert "/static/js/app.js" in pending and "/static/app.css" in pending
    seen: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        asset = await api.get(path)
        assert asset.status_code == 200, path
        assert not LOADS_EXTERNAL.search(asset.text), f"{path} loads from outside the app"
        for module in re.findall(r'from "(\./[^"]+|\.\./[^"]+)"', asset.text):
            pending.append(posixpath.normpath(posixpath.join(posixpath.dirname(path), module)))
    assert {"/static/js/views/index.js", "/static/js/live.js"} <= seen
    assert len([p for p in seen if p.startswith("/static/js/views/")]) >= 9

