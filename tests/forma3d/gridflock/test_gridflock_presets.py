"""GridFlock presets and parameters: the presets API, validated tenant settings, the SKU that
names every choice, and an order picking a preset by its SKU or a property."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from forma3d.db.pool import Pool
from forma3d.domain.gridflock import PlanOptions, get_profile, parse_sku, plan_plates
from forma3d.domain.gridflock.planner import CONNECTOR_DEPTH_MM
from forma3d.domain.gridflock.sku import canonical_sku, preset_name
from forma3d.domain.tenants import FILAMENTS, TenantSettings
from forma3d.gridflock.artifacts import PlateArtifacts
from forma3d.gridflock.cache import ArtifactCache
from forma3d.gridflock.geometry import PlateSpec, plate_solid
from forma3d.gridflock.slicing import PROFILES_DIR, PrusaSlicer
from forma3d.gridflock.stl import scad_parameters
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.store.apikeys import create_api_key
from tests.forma3d.handlers.test_gridflock_intake import enable, order_with

MK4_MAGNETS = {"name": "mk4_magnets", "printer_profile": "prusa-mk4", "magnets": True,
               "magnet_diameter_mm": 8, "magnet_depth_mm": 3, "connector": "puzzle",
               "margin_mm": 3.5, "brim_mm": 3, "filament": "pla"}


# --- settings, SKUs, geometry ---------------------------------------------------------------


def test_tenant_settings_validate_the_gridflock_parameters() -> None:
    ok = TenantSettings.model_validate({"gridflock_magnet_diameter_mm": 8,
                                        "gridflock_magnet_depth_mm": 3, "gridflock_brim_mm": 3,
                                        "gridflock_margin_mm": 5, "gridflock_max_mm": 900})
    assert ok.gridflock_brim_mm == 3
    for bad, words in [({"gridflock_magnet_diameter_mm": 40}, "magnet_diameter"),
                       ({"gridflock_magnet_depth_mm": 0}, "magnet_depth"),
                       ({"gridflock_brim_mm": -1}, "brim"),
                       ({"gridflock_margin_mm": CONNECTOR_DEPTH_MM}, "margin"),
                       ({"gridflock_max_mm": 5000}, "max_mm"),
                       ({"gridflock_min_mm": 600, "gridflock_max_mm": 500}, "above"),
                       ({"gridflock_filament": "wood"}, "unknown filament"),
                       ({"gridflock_storefront_origins": ["shop.example"]}, "origin")]:
        with pytest.raises(ValidationError, match=words):
            TenantSettings.model_validate(bad)


def test_printer_profiles_have_slicer_files_with_their_bed_and_every_filament_a_profile() -> None:
    ids = {"bambu-a1": (256, 256), "bambu-a1-mini": (180, 180), "bambu-p1s": (256, 256),
           "prusa-mk4": (250, 210), "prusa-mini": (180, 180), "bed-350": (350, 350)}
    for pid, (x, y) in ids.items():
        profile = get_profile(pid)
        assert (profile.bed_x_mm, profile.bed_y_mm) == (x, y)
        ini = (PROFILES_DIR / "prusaslicer" / f"{profile.slicer_profile}.ini").read_text()
        assert f"bed_shape = 0x0,{x}x0,{x}x{y},0x{y}" in ini
    for filament in FILAMENTS:
        assert (PROFILES_DIR / "prusaslicer" / f"filament_{filament}.ini").is_file()
    overrides = PrusaSlicer.overrides(get_profile("prusa-mk4"), PlanOptions(brim_mm=3).slicing)
    assert overrides == ["--bed-shape", "0x0,250x0,250x210,0x210", "--brim-width", "3"]


def test_the_sku_names_every_choice_and_parses_back() -> None:
    options = PlanOptions(magnets=True, magnet_diameter_mm=8, magnet_depth_mm=3, brim_mm=3,
                          margin_mm=5, filament="petg")
    sku = canonical_sku(400, 300, options, get_profile("prusa-mk4"))
    assert sku == "GRID-400x300-MAG8x3-PUZZLE-MK4-B3-M5-FPETG"
    back = parse_sku(sku)
    assert back.options == options and back.profile.id == "prusa-mk4" and back.sku == sku
    default = canonical_sku(400, 300, PlanOptions(magnets=True), get_profile("bambu-a1"))
    assert default == "GRID-400x300-MAG-PUZZLE-A1"  # existing SKUs keep their names
    assert parse_sku(default).options == PlanOptions(magnets=True)


def test_preset_is_named_by_the_shop_sku_or_a_property() -> None:
    assert preset_name("GRID-CUSTOM", []) is None
    assert preset_name("GRID-CUSTOM-MK4_MAGNETS-RED", []) == "mk4_magnets"
    assert preset_name("GRID-CUSTOM-A", [{"name": "Preset", "value": "B"}]) == "b"


def test_brim_and_margin_shrink_the_usable_bed_and_deep_magnets_thicken_the_floor() -> None:
    profile = get_profile("prusa-mk4")
    plain = plan_plates(460, 300, profile)
    brimmed = plan_plates(460, 300, profile, PlanOptions(brim_mm=10))
    assert all(p.width_mm + 2 * 10 <= profile.bed_x_mm - 3.5 for p in brimmed.plates)
    assert brimmed.total_plates > plain.total_plates
    deep = plan_plates(200, 200, profile, PlanOptions(magnets=True, magnet_depth_mm=3))
    assert deep.options.floor_mm == pytest.approx(3.6)
    assert deep.plates[0].height_mm == pytest.approx(3.6 + 4.65)


def test_the_manifold_engine_cuts_the_chosen_magnet_hole() -> None:
    profile = get_profile("prusa-mk4")
    small = plan_plates(130, 130, profile, PlanOptions(magnets=True)).plates[0]
    large = plan_plates(130, 130, profile, PlanOptions(magnets=True, magnet_diameter_mm=8,
                                                       magnet_depth_mm=2.4)).plates[0]
    params = scad_parameters(large)
    assert params["magnet_d"] == "8" and params["magnet_depth"] == "2.4"
    assert small.key != large.key
    v_small = plate_solid(PlateSpec.from_scad(scad_parameters(small))).volume()
    v_large = plate_solid(PlateSpec.from_scad(scad_parameters(large))).volume()
    holes = 4 * 3 * 3  # four per whole cell, 3 x 3 whole cells
    polygon = 12 * math.sin(2 * math.pi / 24)  # a 24-gon's area over r²
    ring = polygon * (4.0**2 - 3.25**2) * 2.4
    assert v_small - v_large == pytest.approx(holes * ring, rel=0.01)


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
async def api(db_pool: Pool, redis_url: str, tenant_id: uuid.UUID
              ) -> AsyncIterator[httpx.AsyncClient]:
    redis = aioredis.from_url(redis_url)
    key = (await create_api_key(db_pool, tenant_id, "test")).key
    transport = httpx.ASGITransport(app=build_app(Deps(db_pool, redis)))
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1",
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        yield client
    await redis.aclose()


@pytest.mark.db
async def test_presets_are_created_listed_replaced_and_deleted(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    r = await api.post("/gridflock/presets", json={**MK4_MAGNETS, "printer_profile": "MK4"})
    assert r.status_code == 201, r.text
    assert r.json()["printer_profile"] == "prusa-mk4" and r.json()["magnet_diameter_mm"] == 8
    again = await api.post("/gridflock/presets", json=MK4_MAGNETS)
    assert again.status_code == 409
    listed = (await api.get("/gridflock/presets")).json()
    assert [p["name"] for p in listed] == ["mk4_magnets"]
    spec = {k: v for k, v in MK4_MAGNETS.items() if k != "name"}
    replaced = await api.put("/gridflock/presets/mk4_magnets", json={**spec, "brim_mm": 5})
    assert replaced.status_code == 200 and replaced.json()["brim_mm"] == 5
    assert (await api.get("/gridflock/presets/mk4_magnets")).json()["brim_mm"] == 5
    assert (await api.put("/gridflock/presets/nope", json=spec)).status_code == 404
    assert (await api.delete("/gridflock/presets/mk4_magnets")).status_code == 204
    assert (await api.get("/gridflock/presets/mk4_magnets")).status_code == 404
    actions = [r["data"]["action"] for r in await db_pool.fetch(
        "SELECT data FROM event_log WHERE tenant_id = $1 AND type = 'gridflock.preset-changed'"
        " ORDER BY occurred_at", tenant_id)]
    assert actions == ["created", "replaced", "deleted"]


@pytest.mark.db
@pytest.mark.parametrize(("change", "field"), [
    ({"name": "has-dash"}, "name"), ({"printer_profile": "ender"}, "printer_profile"),
    ({"magnet_diameter_mm": 30}, "magnet_diameter_mm"), ({"brim_mm": 11}, "brim_mm"),
    ({"filament": "wood"}, "filament"), ({"connector": "glue"}, "connector"),
])
async def test_bad_presets_are_refused_naming_the_field(
        api: httpx.AsyncClient, change: dict[str, object], field: str) -> None:
    r = await api.post("/gridflock/presets", json={**MK4_MAGNETS, **change})
    assert r.status_code == 422 and field in r.text


# --- orders ---------------------------------------------------------------------------------


@pytest.mark.db
async def test_an_order_picks_its_preset_by_sku_or_property(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await enable(db_pool, tenant_id, gridflock_brim_mm=1)
    assert (await api.post("/gridflock/presets", json=MK4_MAGNETS)).status_code == 201
    size = {"Width (mm)": "400", "Depth (mm)": "300"}
    by_sku = await order_with(db_pool, tenant_id, size, sku="GRID-CUSTOM-MK4_MAGNETS")
    assert by_sku["status"] == "GENERATING"
    assert by_sku["mapping_sku"] == "GRID-400x300-MAG8x3-PUZZLE-MK4-B3"
    by_prop = await order_with(db_pool, tenant_id, {**size, "Preset": "mk4_magnets",
                                                    "Magnets": "no"})
    assert by_prop["mapping_sku"] == "GRID-400x300-NOMAG-PUZZLE-MK4-B3"
    plain = await order_with(db_pool, tenant_id, size)
    assert plain["mapping_sku"] == "GRID-400x300-NOMAG-PUZZLE-A1-B1"  # the tenant's settings
    job = await db_pool.fetchrow("SELECT printer_profile, plan FROM gridflock_jobs"
                                 " WHERE tenant_id = $1 AND sku = $2", tenant_id,
                                 by_sku["mapping_sku"])
    assert job is not None and job["printer_profile"] == "prusa-mk4"
    assert job["plan"]["magnet_diameter_mm"] == 8 and job["plan"]["brim_mm"] == 3
    unknown = await order_with(db_pool, tenant_id, size, sku="GRID-CUSTOM-NOPE")
    assert unknown["status"] == "NEEDS_MAPPING"
    assert "unknown preset 'nope'" in unknown["reason"] and "mk4_magnets" in unknown["reason"]
    odd = await order_with(db_pool, tenant_id, {**size, "Preset": "mk4-magnets; drop"})
    assert odd["status"] == "NEEDS_MAPPING" and "unknown preset" in odd["reason"]


async def test_a_slice_takes_the_brim_the_bed_and_the_filament(tmp_path: Path) -> None:
    """The slicer run takes the preset's brim and filament and the profile's bed, and the
    gcode's cache key changes with each of them."""
    profile = get_profile("prusa-mk4")
    options = PlanOptions(brim_mm=3, filament="petg")
    plate = plan_plates(100, 100, profile, options).plates[0]
    artifacts = PlateArtifacts(ArtifactCache(tmp_path))
    made = await artifacts.gcode(plate, profile, options.slicing)
    text = made.path.read_text(errors="replace")
    assert "; brim_width = 3\n" in text and "; filament_type = PETG\n" in text
    assert "; bed_shape = 0x0,250x0,250x210,0x210\n" in text
    plain = await artifacts.gcode(plate, profile)
    assert plain.key != made.key and "; brim_width = 0\n" in plain.path.read_text(
        errors="replace")
    assert plain.stats.filament_g < made.stats.filament_g  # the brim is printed too
