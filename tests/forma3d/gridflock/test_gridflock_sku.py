from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forma3d.domain.gridflock.errors import InvalidGridRequest
from forma3d.domain.gridflock.planner import ConnectorStyle, PlanOptions
from forma3d.domain.gridflock.profiles import PROFILES, PrinterProfile, get_profile
from forma3d.domain.gridflock.sku import (
    SizeLimits,
    canonical_sku,
    is_custom_sku,
    parse_line_item,
    parse_sku,
)

A1 = PROFILES["bambu-a1"]


def test_canonical_sku_example() -> None:
    assert canonical_sku(523, 387, PlanOptions(magnets=True), A1) == "GRID-523x387-MAG-PUZZLE-A1"
    opts = PlanOptions(magnets=False, connector=ConnectorStyle.NONE)
    assert (
        canonical_sku(523.5, 387.26, opts, PROFILES["prusa-mk4"])
        == "GRID-523.5x387.5-NOMAG-NONE-MK4"
    )


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=200, max_value=2000).map(lambda v: v / 2),
    st.integers(min_value=200, max_value=2000).map(lambda v: v / 2),
    st.booleans(),
    st.sampled_from(list(ConnectorStyle)),
    st.sampled_from(sorted(PROFILES.values(), key=lambda p: p.id)),
)
def test_canonical_sku_round_trip(
    w: float, d: float, magnets: bool, conn: ConnectorStyle, profile: PrinterProfile
) -> None:
    opts = PlanOptions(magnets=magnets, connector=conn)
    sku = canonical_sku(w, d, opts, profile)
    req = parse_sku(sku)
    assert (req.width_mm, req.depth_mm, req.options, req.profile) == (w, d, opts, profile)
    assert req.sku == sku


@pytest.mark.parametrize("bad", ["GRID-CUSTOM", "GRID-523x387-MAG-PUZZLE", "GRID-5x3-X-PUZZLE-A1"])
def test_bad_sku_is_a_clear_error(bad: str) -> None:
    with pytest.raises(InvalidGridRequest, match="not a GridFlock SKU"):
        parse_sku(bad)


def test_unknown_profile_code() -> None:
    with pytest.raises(InvalidGridRequest, match="unknown printer profile"):
        parse_sku("GRID-523x387-MAG-PUZZLE-ENDER3")
    assert get_profile("mk4") is PROFILES["prusa-mk4"]


def test_is_custom_sku() -> None:
    assert is_custom_sku("GRID-CUSTOM") and is_custom_sku("grid-custom-a1")
    assert not is_custom_sku("GRID-523x387-MAG-PUZZLE-A1") and not is_custom_sku(None)


def test_parse_shopify_property_list() -> None:
    props = [
        {"name": "Width (mm)", "value": "523"},
        {"name": "Depth (mm)", "value": "387,5 mm"},
        {"name": "Magnets", "value": "Yes"},
        {"name": "_internal", "value": "ignored"},
    ]
    req = parse_line_item(props, A1)
    assert (req.width_mm, req.depth_mm) == (523, 387.5)
    assert req.options == PlanOptions(magnets=True, connector=ConnectorStyle.PUZZLE)
    assert req.sku == "GRID-523x387.5-MAG-PUZZLE-A1"
    assert req.plan().depth_mm == 387.5


def test_parse_mapping_with_connector_none() -> None:
    req = parse_line_item(
        {"drawer_width": "300", "drawer_depth": "200", "connector": "none", "magnets": "no"}, A1
    )
    assert req.options == PlanOptions(magnets=False, connector=ConnectorStyle.NONE)


@pytest.mark.parametrize(
    "props,field,message",
    [
        ({"depth": "300"}, "width", "missing"),
        ({"width": "abc", "depth": "300"}, "width", "not a number"),
        ({"width": "99", "depth": "300"}, "width", "outside the allowed range 100 to 1000 mm"),
        ({"width": "300", "depth": "1200"}, "depth", "outside the allowed range"),
        ({"width": "300", "depth": "inf"}, "depth", "not a number"),
        ({"width": "300", "depth": "300", "magnets": "maybe"}, "magnets", "not yes or no"),
        ({"width": "300", "depth": "300", "connector": "dovetail"}, "connector", "puzzle, none"),
    ],
)
def test_parse_errors_name_the_field(props: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(InvalidGridRequest, match=message) as info:
        parse_line_item(props, A1)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_tenant_limits() -> None:
    limits = SizeLimits(min_mm=200, max_mm=600)
    with pytest.raises(InvalidGridRequest, match="200 to 600"):
        parse_line_item({"width": "150", "depth": "300"}, A1, limits)
    assert parse_line_item({"width": "600", "depth": "200"}, A1, limits).width_mm == 600
