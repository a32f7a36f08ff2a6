"""Changes across real Serve replicas: `scripts/up` with two replicas of the API (and its
simulators in that process, not this one); a key revoked through one request is refused by both
within a second, and a Shopify webhook secret rotated through the API is in force on both
within a second.

Ray Serve picks the replica of each request itself; a batch of concurrent requests reaches both
replicas (two replica processes are seen running), so a batch answered 401 in full is both
replicas refusing the key."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from forma3d.store.tenants import DEFAULT_TENANT_ID
from sandbox.server import SandboxConfig
from tests.e2e.test_clean_stop import Up
from tests.e2e.test_connect_shop import shopify_webhook
from tests.e2e.test_demo import free_port_block
from tests.polling import eventually, settled

pytestmark = pytest.mark.timeout(1200)
BATCH = 40


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, dict[str, str]]]:
    data = Path(tempfile.mkdtemp(prefix="f3rep-"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="f3rray-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS", "FORMA3D_ENTITY_HOSTS")}
    env.update({"FORMA3D_DATA_DIR": str(data), "RAY_TMPDIR": str(ray_tmp),
                "FORMA3D_HTTP_PORT": str(free_port_block()), "FORMA3D_SERVE_REPLICAS": "2",
                "FORMA3D_ENTITY_HOSTS": "1"})
    run = Up(env, tmp_path_factory.mktemp("replicas") / "up.log")
    try:
        run.wait_ready()
        yield run, env
    finally:
        run.end()
        for path in (data, ray_tmp):
            subprocess.run(["rm", "-rf", str(path)], check=False)


def cli(env: dict[str, str], *args: str) -> str:
    forma3d = Path(sys.executable).with_name("forma3d")
    done = subprocess.run([str(forma3d), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


async def statuses(client: httpx.AsyncClient, key: str) -> list[int]:
    answers = await asyncio.gather(*(
        client.get("/api/v1/printers", headers={"Authorization": f"Bearer {key}"})
        for _ in range(BATCH)))
    return [a.status_code for a in answers]


async def test_a_revoked_key_is_refused_by_every_replica_after_its_next_epoch_check(
        up: tuple[Up, dict[str, str]]) -> None:
    run, env = up
    admin = cli(env, "apikey", "create", "--tenant", "default", "--name", "admin")
    victim = cli(env, "apikey", "create", "--tenant", "default", "--name", "victim")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{run.port}", timeout=30) as client:
        # Both replicas running, and both have the victim's key in their caches.
        await eventually(lambda: _replicas(run, 2), timeout=120, interval=1,
                         what="two API replicas")
        assert await statuses(client, victim) == [200] * BATCH
        keys = (await client.get("/api/v1/api-keys",
                                 headers={"Authorization": f"Bearer {admin}"})).json()
        victim_id = next(k["id"] for k in keys if k["name"] == "victim")
        revoked = await client.delete(f"/api/v1/api-keys/{victim_id}",
                                      headers={"Authorization": f"Bearer {admin}"})
        assert revoked.status_code in (200, 204), revoked.text

        async def refused_everywhere() -> bool:
            return await statuses(client, victim) == [401] * BATCH

        await settled(refused_everywhere, what="the revoked key refused by both replicas")
        assert await statuses(client, admin) == [200] * BATCH  # the other key still works


async def _replicas(run: Up, wanted: int) -> bool:
    """Ray retitles an actor's worker `ray::ServeReplica:<app>:<deployment>`."""
    found = 0
    for process in run.processes():
        try:
            found += "ServeReplica:forma3d" in " ".join(process.cmdline())
        except psutil.Error:
            continue
    return found >= wanted


async def test_a_rotated_webhook_secret_is_in_force_on_every_replica_after_its_next_epoch_check(
        up: tuple[Up, dict[str, str]]) -> None:
    run, env = up
    owner = cli(env, "apikey", "create", "--tenant", "default", "--name", "owner")
    tenant = str(DEFAULT_TENANT_ID)
    old, new = SandboxConfig().shopify.webhook_secret, uuid.uuid4().hex
    base = f"http://127.0.0.1:{run.port}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await eventually(lambda: _replicas(run, 2), timeout=120, interval=1,
                         what="two API replicas")

        async def batch(secret: str) -> list[int]:
            return list(await asyncio.gather(*(
                shopify_webhook(client, base, tenant, secret) for _ in range(BATCH))))

        assert await batch(old) == [200] * BATCH  # the connected secret, cached on both
        rotated = await client.put("/api/v1/integrations/shopify", json={"webhook_secret": new},
                                   headers={"Authorization": f"Bearer {owner}"})
        assert rotated.status_code == 200, rotated.text

        async def switched() -> bool:
            return await batch(new) == [200] * BATCH and await batch(old) == [401] * BATCH

        await settled(switched, what="the rotated secret in force on both replicas")
