"""GridFlock end to end: a custom-baseplate order through planning, plate geometry (the
manifold engine by default; OpenSCAD where a test injects OpenSCAD faults), slicing, upload,
mapping, printing and shipping in the sandboxes, with the real tools on the session Ray cluster.

The slicer pool's cache root is a fresh directory for this module, so every STL below is really
made and the counts are exact.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import ray

from actors.runtime import Runtime
from actors.slicer_pool import get_pool
from forma3d.domain.gridflock import PlanOptions, get_profile, plan_plates
from forma3d.messaging.envelope import Envelope
from forma3d.store.apikeys import create_api_key
from sandbox.shopify import LineItemSpec, OrderSpec
from tests.e2e.conftest import Farm

pytestmark = pytest.mark.ray
DONE = {"FULFILLED", "FAILED", "CANCELLED"}


@pytest.fixture(scope="module")
def slicer_pool(ray_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pool = get_pool()
    before = ray.get(pool.status.remote())
    ray.get(pool.configure.remote(cache_root=str(tmp_path_factory.mktemp("gridflock-cache")),
                                  tool_env={}))
    yield pool
    ray.get(pool.configure.remote(cache_root=before["cache_root"], tool_env={}))


@pytest.fixture
async def gridflock_farm(farm: Farm, slicer_pool: Any) -> AsyncIterator[Farm]:
    await enable(farm)
    yield farm
    ray.get(slicer_pool.configure.remote(tool_env={}))


async def enable(farm: Farm, **settings: Any) -> None:
    await farm.pool.execute(
        "UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2 WHERE id = $1",
        farm.tenant_id, {"gridflock_enabled": True, **settings})


def send_drawer(farm: Farm, width: float, depth: float, *, magnets: bool = True,
                quantity: int = 1) -> int:
    properties = [{"name": "Width (mm)", "value": f"{width:g}"},
                  {"name": "Depth (mm)", "value": f"{depth:g}"},
                  {"name": "Magnets", "value": "yes" if magnets else "no"}]
    order = farm.shopify.create_order(OrderSpec(line_items=[LineItemSpec(
        sku="GRID-CUSTOM", quantity=quantity, title="Custom Gridfinity baseplate",
        properties=properties)]))
    return int(order["id"])


async def order_row(farm: Farm, shopify_id: int) -> dict[str, Any] | None:
    row = await farm.pool.fetchrow(
        """SELECT o.id, o.status, o.reason, li.status AS item_status, li.reason AS item_reason,
                  li.mapping_sku FROM orders o JOIN line_items li ON li.order_id = o.id
           WHERE o.tenant_id = $1 AND o.shopify_order_id = $2""", farm.tenant_id, shopify_id)
    return None if row is None else dict(row)


async def wait_job(farm: Farm, sku: str, statuses: set[str],
                   timeout: float = 300) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await farm.pool.fetchrow(
            "SELECT * FROM gridflock_jobs WHERE tenant_id = $1 AND sku = $2", farm.tenant_id, sku)
        if row is not None and row["status"] in statuses:
            return dict(row)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {sku} not {statuses}: {row and dict(row)}")
        await asyncio.sleep(0.25)


async def wait_item(farm: Farm, shopify_id: int, status: str,
                    timeout: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        row = await order_row(farm, shopify_id)
        if row is not None and row["item_status"] == status:
            return row
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"line item not {status}: {row}")
        await asyncio.sleep(0.2)


async def api_client(farm: Farm, ingress: str) -> httpx.AsyncClient:
    key = (await create_api_key(farm.pool, farm.tenant_id, "gridflock-test")).key
    return httpx.AsyncClient(base_url=f"{ingress}/api/v1", timeout=30,
                             headers={"Authorization": f"Bearer {key}"})


def sku_of(width: float, depth: float, magnets: bool = True) -> str:
    return f"GRID-{width:g}x{depth:g}-{'MAG' if magnets else 'NOMAG'}-PUZZLE-A1"


# --- the demo drawer ------------------------------------------------------------------------


async def test_demo_drawer_goes_from_order_to_fulfilled(gridflock_farm: Farm,
                                                        ingress: str) -> None:
    """523 x 387 mm with magnets on the Bambu A1: six unique plates, all real."""
    farm = gridflock_farm
    plan = plan_plates(523, 387, get_profile("bambu-a1"), PlanOptions(magnets=True))
    shopify_id = send_drawer(farm, 523, 387)
    sku = sku_of(523, 387)

    job = await wait_job(farm, sku, {"COMPLETED", "FAILED"}, timeout=480)
    assert job["status"] == "COMPLETED", job
    assert job["stl_runs"] == len(plan.plates) and job["slice_runs"] == len(plan.plates)
    assert {p["stl_engine"] for p in job["plates"]} == {"manifold"}
    final = await farm.wait([shopify_id], DONE, timeout=180)
    assert final == {shopify_id: "FULFILLED"}

    row = await order_row(farm, shopify_id)
    assert row is not None and row["mapping_sku"] == sku and row["item_status"] == "PRINTED"
    parts = await farm.pool.fetch(
        """SELECT mp.quantity, mp.grams, pf.filename, pf.farm_file_id FROM product_mappings m
           JOIN mapping_parts mp ON mp.mapping_id = m.id JOIN print_files pf ON pf.id = mp.file_id
           WHERE m.tenant_id = $1 AND m.sku = $2""", farm.tenant_id, sku)
    assert sorted(p["quantity"] for p in parts) == sorted(p.count for p in plan.plates)
    assert all(p["grams"] > 0 and p["farm_file_id"] for p in parts)
    jobs = await farm.pool.fetchval(
        "SELECT count(*) FROM print_jobs WHERE tenant_id = $1 AND status = 'COMPLETED'",
        farm.tenant_id)
    assert jobs == plan.total_plates
    events = {r["type"] for r in await farm.pool.fetch(
        "SELECT type FROM event_log WHERE tenant_id = $1", farm.tenant_id)}
    assert "gridflock.mapping-ready" in events and "gridflock.pipeline-failed" not in events

    async with await api_client(farm, ingress) as api:
        listed = (await api.get("/gridflock/jobs", params={"sku": sku, "meta": "true"})).json()
        assert listed["total"] == 1 and listed["data"][0]["status"] == "COMPLETED"
        stl = await api.get(f"/gridflock/jobs/{job['id']}/plates/1/stl")
        assert stl.status_code == 200 and len(stl.content) > 10_000
        gcode = await api.get(f"/gridflock/jobs/{job['id']}/plates/1/gcode")
        assert gcode.status_code == 200 and b"; filament used [g]" in gcode.content


# --- a preset -------------------------------------------------------------------------------


async def test_a_preset_order_is_made_by_manifold_and_sliced_with_its_brim(
        gridflock_farm: Farm, ingress: str) -> None:
    """The shop's SKU names a preset (Prusa MK4, 8 x 3 mm magnets, 3 mm brim): the new size is
    planned for the MK4 bed less the brim, made by the manifold engine with the larger holes,
    sliced with the brim, and the order is fulfilled."""
    farm = gridflock_farm
    async with await api_client(farm, ingress) as api:
        created = await api.post("/gridflock/presets", json={
            "name": "mk4_magnets", "printer_profile": "prusa-mk4", "magnets": True,
            "magnet_diameter_mm": 8, "magnet_depth_mm": 3, "brim_mm": 3})
        assert created.status_code == 201, created.text
    options = PlanOptions(magnets=True, magnet_diameter_mm=8, magnet_depth_mm=3, brim_mm=3)
    plan = plan_plates(300, 180, get_profile("prusa-mk4"), options)
    order = farm.shopify.create_order(OrderSpec(line_items=[LineItemSpec(
        sku="GRID-CUSTOM-MK4_MAGNETS", quantity=1, title="Custom Gridfinity baseplate",
        properties=[{"name": "Width (mm)", "value": "300"},
                    {"name": "Depth (mm)", "value": "180"}])]))
    shopify_id = int(order["id"])
    sku = "GRID-300x180-MAG8x3-PUZZLE-MK4-B3"

    job = await wait_job(farm, sku, {"COMPLETED", "FAILED"}, timeout=480)
    assert job["status"] == "COMPLETED", job
    assert job["printer_profile"] == "prusa-mk4" and job["plan"]["brim_mm"] == 3
    assert {p["stl_engine"] for p in job["plates"]} == {"manifold"}
    assert job["stl_runs"] == job["slice_runs"] == len(plan.plates)
    final = await farm.wait([shopify_id], DONE, timeout=180)
    assert final == {shopify_id: "FULFILLED"}
    row = await order_row(farm, shopify_id)
    assert row is not None and row["mapping_sku"] == sku

    async with await api_client(farm, ingress) as api:
        for plate in plan.plates:
            gcode = await api.get(f"/gridflock/jobs/{job['id']}/plates/{plate.number}/gcode")
            assert gcode.status_code == 200
            assert b"; brim_width = 3\n" in gcode.content
            assert b"; bed_shape = 0x0,250x0,250x210,0x210\n" in gcode.content
        stl = await api.get(f"/gridflock/jobs/{job['id']}/plates/1/stl")
    assert stl.status_code == 200 and stl.content.startswith(b"forma3d gridflock plate (manifold")
    corners = np.frombuffer(stl.content[84:], dtype=np.dtype([
        ("n", "<f4", (3,)), ("v", "<f4", (3, 3)), ("a", "<u2")]))["v"].reshape(-1, 3)
    height = float(corners[:, 2].max() - corners[:, 2].min())
    assert height == pytest.approx(3.6 + 4.65, abs=0.01)  # the floor holds 3 mm deep magnets


# --- single flight --------------------------------------------------------------------------


async def test_ten_concurrent_orders_for_a_new_size_run_openscad_once_per_plate(
        gridflock_farm: Farm, slicer_pool: Any) -> None:
    farm = gridflock_farm
    width, depth = 300, 200  # two unique plates
    plan = plan_plates(width, depth, get_profile("bambu-a1"), PlanOptions(magnets=False))
    before = ray.get(slicer_pool.status.remote())["stats"].get("stl.miss", 0)
    orders = [send_drawer(farm, width, depth, magnets=False) for _ in range(10)]

    final = await farm.wait(orders, DONE, timeout=420)
    assert set(final.values()) == {"FULFILLED"}, final
    sku = sku_of(width, depth, magnets=False)
    jobs = await farm.pool.fetch("SELECT * FROM gridflock_jobs WHERE tenant_id = $1",
                                 farm.tenant_id)
    assert [(j["sku"], j["status"]) for j in jobs] == [(sku, "COMPLETED")]
    assert jobs[0]["stl_runs"] == len(plan.plates) == 2
    after = ray.get(slicer_pool.status.remote())["stats"].get("stl.miss", 0)
    assert after - before == len(plan.plates)  # counted by the pool across all workers
    printed = await farm.pool.fetchval(
        "SELECT count(*) FROM print_jobs WHERE tenant_id = $1 AND status = 'COMPLETED'",
        farm.tenant_id)
    assert printed == 10 * plan.total_plates

    # A repeat order of the size maps at once: no new job, no tool run.
    again = send_drawer(farm, width, depth, magnets=False)
    assert await farm.wait([again], DONE, timeout=120) == {again: "FULFILLED"}
    assert await farm.pool.fetchval(
        "SELECT count(*) FROM gridflock_jobs WHERE tenant_id = $1", farm.tenant_id) == 1
    assert ray.get(slicer_pool.status.remote())["stats"].get("stl.miss", 0) == after


# --- faults and retry -----------------------------------------------------------------------


def crashing_slicer(directory: Path) -> Path:
    """A prusa-slicer that answers --help (its version is part of cache keys) and then dies."""
    script = directory / "prusa-slicer-crash"
    script.write_text('#!/bin/sh\ncase "$*" in *--help*) exec prusa-slicer "$@";; esac\n'
                      'echo "simulated crash" >&2\nkill -SEGV $$\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("fault", ["openscad-missing", "slicer-crash"])
async def test_a_failed_step_holds_the_order_and_a_retry_completes_it(
        gridflock_farm: Farm, slicer_pool: Any, ingress: str, tmp_path: Path,
        fault: str) -> None:
    farm = gridflock_farm
    if fault == "openscad-missing":
        await enable(farm, gridflock_engine="openscad")  # the fallback engine, with its tool gone
        width, depth, step = 130, 100, "GENERATING_STL"
        tool_env = {"OPENSCAD_BIN": "/nonexistent/openscad"}
        words = "OpenSCAD (/nonexistent/openscad) not found"
    else:
        width, depth, step = 130.5, 100, "SLICING"
        tool_env = {"PRUSA_SLICER_BIN": str(crashing_slicer(tmp_path))}
        words = "killed by signal 11"
    ray.get(slicer_pool.configure.remote(tool_env=tool_env))
    sku = sku_of(width, depth)
    shopify_id = send_drawer(farm, width, depth)

    job = await wait_job(farm, sku, {"FAILED", "COMPLETED"}, timeout=180)
    assert job["status"] == "FAILED" and job["failed_step"] == step, job
    assert words in job["error"]
    held = await wait_item(farm, shopify_id, "NEEDS_MAPPING")
    assert held["status"] == "ON_HOLD"
    assert step in held["item_reason"] and words in held["item_reason"]
    failed = await farm.pool.fetchrow(
        "SELECT data FROM event_log WHERE tenant_id = $1 AND type = 'gridflock.pipeline-failed'",
        farm.tenant_id)
    assert failed is not None and failed["data"]["failed_step"] == step

    async with await api_client(farm, ingress) as api:
        busy = await api.post(f"/gridflock/jobs/{uuid.uuid4()}/retry")
        assert busy.status_code == 404
        ray.get(slicer_pool.configure.remote(tool_env={}))  # the fault is removed
        retried = await api.post(f"/gridflock/jobs/{job['id']}/retry")
        assert retried.status_code == 202, retried.text
    job = await wait_job(farm, sku, {"COMPLETED"}, timeout=180)
    assert job["attempts"] == 1 and job["failed_step"] is None
    assert await farm.wait([shopify_id], DONE, timeout=120) == {shopify_id: "FULFILLED"}


async def test_out_of_limits_and_switched_off_are_held_with_the_reason(
        farm: Farm, slicer_pool: Any) -> None:
    too_big = send_drawer(farm, 1200, 300)
    row = await wait_item(farm, too_big, "NEEDS_MAPPING")
    assert "off for this tenant" in row["item_reason"] and row["status"] == "ON_HOLD"

    await enable(farm, gridflock_max_mm=800)
    too_big = send_drawer(farm, 1200, 300)
    row = await wait_item(farm, too_big, "NEEDS_MAPPING")
    assert "1200 mm is outside the allowed range 100 to 800 mm" in row["item_reason"]
    assert row["status"] == "ON_HOLD" and row["mapping_sku"] is None
    assert await farm.pool.fetchval(
        "SELECT count(*) FROM gridflock_jobs WHERE tenant_id = $1", farm.tenant_id) == 0


def test_the_crash_script_really_crashes(tmp_path: Path) -> None:
    import subprocess

    script = crashing_slicer(tmp_path)
    run = subprocess.run([str(script), "--export-gcode", "x.stl"], capture_output=True,
                         check=False, env={**os.environ})
    assert run.returncode == -11


# --- crash ----------------------------------------------------------------------------------


async def test_a_pipeline_resumes_after_its_host_is_killed(
        gridflock_farm: Farm, slicer_pool: Any, ray_runtime: Runtime, tmp_path: Path) -> None:
    """SIGKILL the entity host mid-STL: the outbox's next ask activates the entity again, it
    resumes from the persisted step, and the plate in flight is not generated twice."""
    farm = gridflock_farm
    await enable(farm, gridflock_engine="openscad")  # seconds per plate: time to kill the host
    slow = tmp_path / "openscad-slow"
    slow.write_text('#!/bin/sh\nsleep 2\nexec openscad "$@"\n')
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    ray.get(slicer_pool.configure.remote(tool_env={"OPENSCAD_BIN": str(slow)}))
    width, depth = 140, 100
    plan = plan_plates(width, depth, get_profile("bambu-a1"), PlanOptions(magnets=True))
    before = ray.get(slicer_pool.status.remote())["stats"].get("stl.miss", 0)
    sku = sku_of(width, depth)
    shopify_id = send_drawer(farm, width, depth)

    await wait_job(farm, sku, {"GENERATING_STL"}, timeout=60)
    envelope = Envelope("gridflock", f"{farm.tenant_id}:{sku}", "gridflock.run",
                        str(farm.tenant_id))
    host = ray_runtime.router.host_for(envelope)
    assert await host.has_entity.remote(envelope.address)
    pid = (await host.status.remote())["pid"]
    os.kill(pid, signal.SIGKILL)

    job = await wait_job(farm, sku, {"COMPLETED", "FAILED"}, timeout=180)
    assert job["status"] == "COMPLETED", job
    assert (await host.status.remote())["pid"] != pid  # it really was another process
    after = ray.get(slicer_pool.status.remote())["stats"].get("stl.miss", 0)
    assert after - before == len(plan.plates)  # the plate in flight was not made twice
    assert await farm.wait([shopify_id], DONE, timeout=120) == {shopify_id: "FULFILLED"}
