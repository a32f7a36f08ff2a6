"""What an operator wrote survives a restart of `scripts/up`: a first start, a tenant and its key
made with the CLI, a printer and a setting written through the REST API, a Ctrl-C; a second
start on the same data directory answers the same key with the same printer and setting.
(The embedded servers' own restart, sealed secrets included, is tests/forma3d/platform/
test_restart.py.)"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_clean_stop import Up
from tests.e2e.test_demo import free_port_block
from tests.e2e.test_replicas import cli

pytestmark = pytest.mark.timeout(1500)


def test_data_written_through_the_api_survives_a_restart(tmp_path: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="f3rst-"))  # short: Ray and HAProxy put sockets here
    ray_tmp = Path(tempfile.mkdtemp(prefix="f3rstr-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS", "FORMA3D_ENTITY_HOSTS")}
    env.update({"FORMA3D_DATA_DIR": str(data), "RAY_TMPDIR": str(ray_tmp),
                "FORMA3D_HTTP_PORT": str(free_port_block()), "FORMA3D_ENTITY_HOSTS": "1"})
    slug = f"kept-{uuid.uuid4().hex[:8]}"
    try:
        first = Up(env, tmp_path / "first.log")
        try:
            first.wait_ready()
            cli(env, "tenant", "create", slug)
            key = cli(env, "apikey", "create", "--tenant", slug, "--name", "kept")
            with httpx.Client(base_url=f"http://127.0.0.1:{first.port}/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {key}"}) as api:
                made = api.post("/printers", json={"name": "Kept MK4", "model": "MK4",
                                                   "tags": ["kept"]})
                assert made.status_code == 201, made.text
                printer = made.json()
                changed = api.patch("/tenant/settings", json={"packaging_grams": 321})
                assert changed.status_code == 200, changed.text
            assert first.ctrl_c() == 0, first.output()[-4000:]
        finally:
            first.end()

        second = Up(env, tmp_path / "second.log")
        try:
            second.wait_ready()
            with httpx.Client(base_url=f"http://127.0.0.1:{second.port}/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {key}"}) as api:
                again = api.get(f"/printers/{printer['id']}")
                assert again.status_code == 200, again.text
                assert {k: again.json()[k] for k in ("name", "model", "tags")} == {
                    "name": "Kept MK4", "model": "MK4", "tags": ["kept"]}
                assert [p["id"] for p in api.get("/printers").json()] == [printer["id"]]
                settings = api.get("/tenant/settings")
                assert settings.status_code == 200 and settings.json()["packaging_grams"] == 321
            assert second.ctrl_c() == 0, second.output()[-4000:]
        finally:
            second.end()
    finally:
        for path in (data, ray_tmp):
            subprocess.run(["rm", "-rf", str(path)], check=False)
