"""GridFlock quotes: the price follows the tenant's model exactly (Decimal arithmetic), figures
are the slicer's when the size was sliced before and an estimate otherwise, limits answer 422
naming the setting, and CORS opens only to the tenant's own storefront."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from forma3d.db.pool import Pool
from forma3d.domain.gridflock import PlanOptions, get_profile, plan_plates
from forma3d.domain.gridflock.quote import (
    ESTIMATE_FITTED_ON,
    estimate_plate,
    magnet_count,
    price,
)
from forma3d.domain.tenants import GridPricing
from forma3d.http.app import build_app
from forma3d.http.deps import Deps
from forma3d.http.routes.api import api as router
from forma3d.integrations.settings import ShopifySettings
from forma3d.store.apikeys import create_api_key
from forma3d.store.integrations import save_integration

PRICING = {"currency": "EUR", "base": "4.90", "per_cell": "0.35", "per_plate": "1.10",
           "per_magnet": "0.12", "minimum": "9.99"}


# --- pure -----------------------------------------------------------------------------------


def test_price_is_the_model_in_decimals() -> None:
    pricing = GridPricing.model_validate(PRICING)
    plan = plan_plates(523, 387, get_profile("bambu-a1"), PlanOptions(magnets=True))
    cost = price(pricing, plan)
    cells = Decimal(str(plan.cells_x)) * Decimal(str(plan.cells_y))
    magnets = sum(4 * int(p.cells_x) * int(p.cells_y) * p.count for p in plan.plates)
    expected = (Decimal("4.90") + Decimal("0.35") * cells + Decimal("1.10") * plan.total_plates
                + Decimal("0.12") * magnets).quantize(Decimal("0.01"))
    assert cost.amount == expected and cost.currency == "EUR"
    assert cells == 108 and cost.magnets == magnets == magnet_count(plan) == 432
    assert str(cost.amount) == "101.14"  # 4.90 + 37.80 + 6.60 + 51.84
    assert not cost.minimum_applied


def test_the_minimum_applies_to_small_drawers_and_no_magnets_cost_nothing() -> None:
    pricing = GridPricing.model_validate(PRICING)
    plan = plan_plates(100, 100, get_profile("bambu-a1"), PlanOptions(magnets=False))
    cost = price(pricing, plan)
    assert cost.magnets == 0
    assert cost.subtotal == Decimal("4.90") + Decimal("0.35") * 4 + Decimal("1.10")
    assert cost.amount == Decimal("9.99") and cost.minimum_applied


def test_half_cells_count_half_and_half_cents_round_up() -> None:
    pricing = GridPricing.model_validate(PRICING)
    plan = plan_plates(535, 387, get_profile("bambu-a1"), PlanOptions(magnets=True))
    cost = price(pricing, plan)
    assert (plan.cells_x, plan.cells_y) == (12.5, 9.0)
    assert cost.cells == Decimal("112.5") and cost.magnets == 432  # no magnets in half cells
    assert cost.subtotal == Decimal("4.90") + Decimal("39.375") + Decimal("6.60") + Decimal(
        "51.84")
    assert str(cost.amount) == "102.72"  # 102.715 half-up


def test_half_cent_rounds_half_up() -> None:
    pricing = GridPricing(currency="USD", per_cell=Decimal("0.005"))
    plan = plan_plates(100, 100, get_profile("bambu-a1"))  # 2 x 2 cells
    assert price(pricing, plan).amount == Decimal("0.02")
    pricing = GridPricing(currency="USD", per_plate=Decimal("0.005"))  # one plate
    assert price(pricing, plan).amount == Decimal("0.01")  # half-up, not to even (0.00)


def test_the_estimate_is_fitted_and_grows_with_the_plate() -> None:
    assert ESTIMATE_FITTED_ON != "unfitted"
    profile = get_profile("prusa-mk4")
    small = plan_plates(100, 100, profile).plates[0]
    large = plan_plates(240, 200, profile).plates[0]
    magnets = plan_plates(240, 200, profile, PlanOptions(magnets=True)).plates[0]
    a, b, c = estimate_plate(small), estimate_plate(large), estimate_plate(magnets)
    assert 0 < a.print_seconds < b.print_seconds < c.print_seconds
    assert 0 < a.filament_g < b.filament_g < c.filament_g


def test_pricing_refuses_floats_in_disguise_and_bad_currencies() -> None:
    with pytest.raises(ValueError, match="currency"):
        GridPricing.model_validate({**PRICING, "currency": "euro"})
    with pytest.raises(ValueError, match="per_cell"):
        GridPricing.model_validate({**PRICING, "per_cell": "-1"})


def test_the_quote_route_declares_its_own_permission_only() -> None:
    by_permission = {(e.method, e.path): e.permission for e in router.endpoints}
    assert by_permission[("POST", "/gridflock/quote")] == "gridflock.quote"
    assert [k for k, v in by_permission.items() if v == "gridflock.quote"] == [
        ("POST", "/gridflock/quote")]
    assert by_permission[("GET", "/gridflock/presets")] == "gridflock.read"
    assert by_permission[("POST", "/gridflock/presets")] == "gridflock.write"


# --- the API --------------------------------------------------------------------------------


@pytest.fixture
async def app(db_pool: Pool, redis_url: str) -> AsyncIterator[httpx.ASGITransport]:
    redis = aioredis.from_url(redis_url)
    yield httpx.ASGITransport(app=build_app(Deps(db_pool, redis)))
    await redis.aclose()


@pytest.fixture
async def api(app: httpx.ASGITransport, db_pool: Pool, tenant_id: uuid.UUID
              ) -> AsyncIterator[httpx.AsyncClient]:
    await settings(db_pool, tenant_id, gridflock_enabled=True, gridflock_pricing=PRICING,
                   gridflock_max_mm=800)
    key = (await create_api_key(db_pool, tenant_id, "storefront")).key
    async with httpx.AsyncClient(transport=app, base_url="http://test/api/v1",
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


async def settings(pool: Pool, tenant_id: uuid.UUID, **values: Any) -> None:
    await pool.execute("UPDATE tenants SET settings = coalesce(settings, '{}'::jsonb) || $2"
                       " WHERE id = $1", tenant_id, values)



@pytest.mark.db
async def test_a_quote_without_slices_is_an_estimate_with_the_exact_price(
        api: httpx.AsyncClient) -> None:
    r = await api.post("/gridflock/quote", json={"width_mm": 523, "depth_mm": 387,
                                                 "options": {"magnets": True}})
    assert r.status_code == 200, r.text
    body = r.json()
    plan = plan_plates(523, 387, get_profile("bambu-a1"), PlanOptions(magnets=True))
    assert body["sku"] == "GRID-523x387-MAG-PUZZLE-A1" and body["figures"] == "estimate"
    assert body["total_plates"] == plan.total_plates == 6
    expected = sum(estimate_plate(p).print_seconds * p.count for p in plan.plates)
    assert body["print_seconds"] == expected > 0
    assert body["price"] == {"currency": "EUR", "amount": "101.14", "subtotal": "101.14",
                             "cells": "108", "plates": 6, "magnets": 432,
                             "minimum_applied": False}


@pytest.mark.db
async def test_a_sliced_size_answers_with_the_slicers_figures(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    plan = plan_plates(300, 200, get_profile("bambu-a1"))
    plates = [{"number": p.number, "count": p.count, "print_seconds": 1000 + p.number,
               "filament_g": 10.5 * p.number} for p in plan.plates]
    await db_pool.execute(
        """INSERT INTO gridflock_jobs (id, tenant_id, sku, printer_profile, plan, plates, status)
           VALUES ($1, $2, $3, 'bambu-a1', '{}'::jsonb, $4, 'COMPLETED')""",
        uuid.uuid4(), tenant_id, "GRID-300x200-NOMAG-PUZZLE-A1", plates)
    body = (await api.post("/gridflock/quote", json={"width_mm": 300, "depth_mm": 200})).json()
    assert body["figures"] == "sliced"
    assert body["print_seconds"] == sum((1000 + p.number) * p.count for p in plan.plates)
    assert body["filament_g"] == pytest.approx(sum(10.5 * p.number * p.count
                                                   for p in plan.plates))


@pytest.mark.db
@pytest.mark.parametrize(("width", "depth", "field", "limit"), [
    (900, 300, "width_mm", "gridflock_max_mm"),
    (300, 50, "depth_mm", "gridflock_min_mm"),
])
async def test_sizes_beyond_the_limits_are_refused_naming_the_limit(
        api: httpx.AsyncClient, width: float, depth: float, field: str, limit: str) -> None:
    r = await api.post("/gridflock/quote", json={"width_mm": width, "depth_mm": depth})
    assert r.status_code == 422
    problem = r.json()
    assert limit in problem["detail"] and problem["errors"][0]["field"] == field


@pytest.mark.db
async def test_a_quote_with_a_preset_uses_its_printer_and_magnets(
        api: httpx.AsyncClient) -> None:
    created = await api.post("/gridflock/presets", json={
        "name": "mk4_big", "printer_profile": "MK4", "magnets": True,
        "magnet_diameter_mm": 8, "magnet_depth_mm": 3, "brim_mm": 3})
    assert created.status_code == 201, created.text
    body = (await api.post("/gridflock/quote", json={"width_mm": 400, "depth_mm": 300,
                                                     "preset": "mk4_big"})).json()
    assert body["sku"] == "GRID-400x300-MAG8x3-PUZZLE-MK4-B3"
    assert body["printer_profile"] == "prusa-mk4" and body["price"]["magnets"] > 0
    missing = await api.post("/gridflock/quote", json={"width_mm": 400, "depth_mm": 300,
                                                       "preset": "nope"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "preset"
    odd = await api.post("/gridflock/quote", json={"width_mm": 400, "depth_mm": 300,
                                                   "preset": "mk4\u0000"})
    assert odd.status_code == 422 and "preset" in odd.text


@pytest.mark.db
async def test_no_price_model_is_a_conflict_naming_the_setting(
        api: httpx.AsyncClient, db_pool: Pool, tenant_id: uuid.UUID) -> None:
    await db_pool.execute("UPDATE tenants SET settings = settings - 'gridflock_pricing'"
                          " WHERE id = $1", tenant_id)
    r = await api.post("/gridflock/quote", json={"width_mm": 300, "depth_mm": 200})
    assert r.status_code == 409 and "gridflock_pricing" in r.json()["detail"]


# --- CORS -----------------------------------------------------------------------------------


SHOP = "https://drawers-shop.myshopify.com"


@pytest.fixture
async def storefront(db_pool: Pool, tenant_id: uuid.UUID) -> str:
    await save_integration(db_pool, tenant_id, ShopifySettings(
        shop_domain=SHOP.removeprefix("https://"), access_token="t", webhook_secret="s"))
    await settings(db_pool, tenant_id, gridflock_storefront_origins=["https://drawers.example"])
    return SHOP


def preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}


@pytest.mark.db
async def test_cors_opens_the_quote_to_the_tenants_storefront_only(
        api: httpx.AsyncClient, app: httpx.ASGITransport, storefront: str,
        db_pool: Pool) -> None:
    async with httpx.AsyncClient(transport=app, base_url="http://test/api/v1") as anonymous:
        ok = await anonymous.options("/gridflock/quote", headers=preflight(storefront))
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == storefront
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "authorization" in ok.headers["access-control-allow-headers"]
        other = await anonymous.options("/gridflock/quote",
                                        headers=preflight("https://evil.example"))
        assert "access-control-allow-origin" not in other.headers
        custom = await anonymous.options("/gridflock/quote",
                                         headers=preflight("https://drawers.example"))
        assert custom.headers["access-control-allow-origin"] == "https://drawers.example"
        elsewhere = await anonymous.options("/orders", headers=preflight(storefront))
        assert "access-control-allow-origin" not in elsewhere.headers

    body = {"width_mm": 300, "depth_mm": 200}
    mine = await api.post("/gridflock/quote", json=body, headers={"Origin": storefront})
    assert mine.status_code == 200 and mine.headers["access-control-allow-origin"] == storefront
    refused = await api.post("/gridflock/quote", json={"width_mm": 9000, "depth_mm": 1},
                             headers={"Origin": storefront})
    assert refused.status_code == 422  # the storefront can read why
    assert refused.headers["access-control-allow-origin"] == storefront
    theirs = await api.post("/gridflock/quote", json=body,
                            headers={"Origin": "https://evil.example"})
    assert theirs.status_code == 200 and "access-control-allow-origin" not in theirs.headers

    # Another tenant's key from this shop's origin: the browser may not read the answer.
    other_tenant = await db_pool.fetchval(
        "INSERT INTO tenants (id, slug, name, settings) VALUES ($1, $2, $2, $3) RETURNING id",
        uuid.uuid4(), f"t-{uuid.uuid4().hex[:12]}", {"gridflock_pricing": PRICING})
    key = (await create_api_key(db_pool, other_tenant, "x")).key
    async with httpx.AsyncClient(transport=app, base_url="http://test/api/v1") as client:
        r = await client.post("/gridflock/quote", json=body, headers={
            "Origin": storefront, "Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
