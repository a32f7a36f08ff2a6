"""Custom roles per tenant over HTTP: created from known permissions only, held by keys and
users, changed (every holder sees the change), deleted only when nobody holds them."""

from __future__ import annotations

import httpx

from forma3d.domain.permissions import BUILTIN_ROLES


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_custom_role_lifecycle(api: httpx.AsyncClient, api_key: str) -> None:
    listed = await api.get("/api/v1/roles", headers=auth(api_key))
    assert listed.status_code == 200
    assert {r["name"] for r in listed.json() if r["builtin"]} == set(BUILTIN_ROLES)

    created = await api.post("/api/v1/roles", headers=auth(api_key), json={
        "name": "shipper", "permissions": ["orders.read", "shipments.retry"]})
    assert created.status_code == 201, created.text
    role = created.json()
    assert role["permissions"] == ["orders.read", "shipments.retry"]
    assert (await api.post("/api/v1/roles", headers=auth(api_key), json={
        "name": "shipper", "permissions": []})).status_code == 409
    assert (await api.post("/api/v1/roles", headers=auth(api_key), json={
        "name": "viewer", "permissions": []})).status_code == 409
    assert (await api.post("/api/v1/roles", headers=auth(api_key), json={
        "name": "odd", "permissions": ["orders.fly"]})).status_code == 422

    key = (await api.post("/api/v1/api-keys", headers=auth(api_key),
                          json={"name": "ship bot", "role": "shipper"})).json()
    assert (await api.get("/api/v1/orders", headers=auth(key["key"]))).status_code == 200
    assert (await api.get("/api/v1/printers", headers=auth(key["key"]))).status_code == 403

    changed = await api.patch(f"/api/v1/roles/{role['id']}", headers=auth(api_key),
                              json={"permissions": ["printers.read"]})
    assert changed.status_code == 200 and changed.json()["permissions"] == ["printers.read"]
    assert (await api.get("/api/v1/printers", headers=auth(key["key"]))).status_code == 200
    assert (await api.get("/api/v1/orders", headers=auth(key["key"]))).status_code == 403

    held = await api.delete(f"/api/v1/roles/{role['id']}", headers=auth(api_key))
    assert held.status_code == 409
    assert (await api.delete(f"/api/v1/api-keys/{key['id']}", headers=auth(api_key))
            ).status_code == 204
    assert (await api.delete(f"/api/v1/roles/{role['id']}", headers=auth(api_key))
            ).status_code == 204
    names = {r["name"] for r in (await api.get("/api/v1/roles", headers=auth(api_key))).json()}
    assert "shipper" not in names


async def test_users_are_managed_and_the_last_owner_stays(api: httpx.AsyncClient,
                                                          api_key: str) -> None:
    invited = await api.post("/api/v1/invitations", headers=auth(api_key), json={
        "email": "own@example.com", "name": "Own", "role": "owner"})
    assert invited.status_code == 201
    user_id = invited.json()["user_id"]
    assert (await api.post("/api/v1/invitations", headers=auth(api_key), json={
        "email": "OWN@example.com", "name": "Again", "role": "viewer"})).status_code == 409
    listed = (await api.get("/api/v1/users", headers=auth(api_key))).json()
    assert [(u["email"], u["invited"]) for u in listed] == [("own@example.com", True)]
    assert "password" not in str(listed)
    last = await api.patch(f"/api/v1/users/{user_id}", headers=auth(api_key),
                           json={"role": "viewer"})
    assert last.status_code == 409
    assert (await api.delete(f"/api/v1/users/{user_id}", headers=auth(api_key))
            ).status_code == 409

    admin = (await api.post("/api/v1/api-keys", headers=auth(api_key),
                            json={"name": "admin", "role": "admin"})).json()["key"]
    # An admin cannot make an owner (the owner's tenant.manage is not theirs to give).
    refused = await api.post("/api/v1/invitations", headers=auth(admin), json={
        "email": "o2@example.com", "name": "O2", "role": "owner"})
    assert refused.status_code == 403
    made = await api.post("/api/v1/invitations", headers=auth(admin), json={
        "email": "op@example.com", "name": "Op", "role": "operator"})
    assert made.status_code == 201
    promoted = await api.patch(f"/api/v1/users/{made.json()['user_id']}",
                               headers=auth(admin), json={"role": "catalogue_manager"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "catalogue_manager"
