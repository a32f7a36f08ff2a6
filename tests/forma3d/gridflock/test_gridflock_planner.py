from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forma3d.domain.gridflock import planner
from forma3d.domain.gridflock.errors import PlanError
from forma3d.domain.gridflock.planner import (
    CONNECTOR_DEPTH_MM,
    CONNECTOR_MARGIN_MM,
    PITCH_MM,
    ConnectorStyle,
    PlanOptions,
    PlateSet,
    plan_plates,
)
from forma3d.domain.gridflock.profiles import PROFILES, PrinterProfile

sizes = st.floats(min_value=100, max_value=1000, allow_nan=False).map(lambda v: round(v, 2))
profiles = st.sampled_from(sorted(PROFILES.values(), key=lambda p: p.id))
options = st.builds(
    PlanOptions, magnets=st.booleans(), connector=st.sampled_from(list(ConnectorStyle))
)


def _columns(ps: PlateSet) -> dict[int, list[tuple[float, float]]]:
    """Per column, the (y, depth) of its plates from south to north."""
    cols: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for pl in sorted(ps.placements, key=lambda p: (p.column, p.row)):
        cols[pl.column].append((pl.y_mm, pl.depth_mm))
    return cols


@settings(max_examples=300, deadline=None)
@given(sizes, sizes, profiles, options)
def test_every_plate_fits_the_bed_minus_the_margin(
    w: float, d: float, profile: PrinterProfile, opts: PlanOptions
) -> None:
    ps = plan_plates(w, d, profile, opts)
    for plate in ps.plates:
        ex, ey, _ = plate.extent_mm
        assert plate.width_mm <= profile.bed_x_mm - CONNECTOR_MARGIN_MM + 1e-6
        assert plate.depth_mm <= profile.bed_y_mm - CONNECTOR_MARGIN_MM + 1e-6
        # The male tabs stick out, but stay inside the margin.
        assert ex <= profile.bed_x_mm and ey <= profile.bed_y_mm
        assert CONNECTOR_DEPTH_MM < CONNECTOR_MARGIN_MM


@settings(max_examples=300, deadline=None)
@given(sizes, sizes, profiles, options)
def test_plates_and_padding_add_up_to_the_drawer(
    w: float, d: float, profile: PrinterProfile, opts: PlanOptions
) -> None:
    ps = plan_plates(w, d, profile, opts)
    # Cells plus padding on both axes.
    assert abs(ps.cells_x * PITCH_MM + ps.padding.west + ps.padding.east - w) < 0.01
    assert abs(ps.cells_y * PITCH_MM + ps.padding.south + ps.padding.north - d) < 0.01
    # Each column's plates stack to the full depth, without gaps.
    for col in _columns(ps).values():
        y = 0.0
        for start, depth in col:
            assert abs(start - y) < 0.01
            y += depth
        assert abs(y - d) < 0.01
    # Each row of the layout spans the full width: column widths add up.
    widths = {pl.column: pl.width_mm for pl in ps.placements}
    assert abs(sum(widths.values()) - w) < 0.01
    # Plate sizes are consistent with the placements.
    for pl in ps.placements:
        plate = ps.plate(pl.number)
        assert abs(plate.width_mm - pl.width_mm) < 0.01
        assert abs(plate.depth_mm - pl.depth_mm) < 0.01
    # Padding sits only on the outermost plates.
    for pl in ps.placements:
        pad = ps.plate(pl.number).padding
        last_row = max(p.row for p in ps.placements if p.column == pl.column)
        assert pad.west == 0 or pl.column == 0
        assert pad.east == 0 or pl.column == ps.columns - 1
        assert pad.south == 0 or pl.row == 0
        assert pad.north == 0 or pl.row == last_row


@settings(max_examples=300, deadline=None)
@given(sizes, sizes, profiles, options)
def test_no_four_way_seam_corners(
    w: float, d: float, profile: PrinterProfile, opts: PlanOptions
) -> None:
    ps = plan_plates(w, d, profile, opts)
    cols = _columns(ps)
    seams = {c: {round(y, 3) for y, _ in rows[1:]} for c, rows in cols.items()}
    for c in range(ps.columns - 1):
        assert not seams[c] & seams[c + 1], (c, seams)


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, profiles, options)
def test_same_input_same_plan(
    w: float, d: float, profile: PrinterProfile, opts: PlanOptions
) -> None:
    first = plan_plates(w, d, profile, opts)
    from forma3d.domain.gridflock import planner

    planner._plan.cache_clear()
    again = plan_plates(w, d, profile, opts)
    assert first == again
    assert first.as_dict() == again.as_dict()


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, profiles, options)
def test_connectors_corners_and_counts(
    w: float, d: float, profile: PrinterProfile, opts: PlanOptions
) -> None:
    ps = plan_plates(w, d, profile, opts)
    assert sum(p.count for p in ps.plates) == ps.total_plates
    assert [p.number for p in ps.plates] == list(range(1, len(ps.plates) + 1))
    assert len({p.key for p in ps.plates}) == len(ps.plates)
    rounded = 0
    for pl in ps.placements:
        plate = ps.plate(pl.number)
        c = plate.connectors
        last_row = max(p.row for p in ps.placements if p.column == pl.column)
        inner = {
            "north": pl.row < last_row,
            "east": pl.column < ps.columns - 1,
            "south": pl.row > 0,
            "west": pl.column > 0,
        }
        puzzle = opts.connector is ConnectorStyle.PUZZLE
        for side, edge, male in (
            ("north", c.north, True),
            ("east", c.east, True),
            ("south", c.south, False),
            ("west", c.west, False),
        ):
            if inner[side] and puzzle:
                assert edge.kind == ("male" if male else "female")
                assert edge.positions
            else:
                assert edge.kind == "none" and not edge.positions
        rounded += sum(
            (
                plate.corners.south_west,
                plate.corners.south_east,
                plate.corners.north_east,
                plate.corners.north_west,
            )
        )
    assert rounded == 4


def _tabs(ps: PlateSet, side: str) -> set[tuple[str, float]]:
    """Global coordinates of every tab on `side` edges, keyed by the seam line they sit on."""
    out: set[tuple[str, float]] = set()
    for pl in ps.placements:
        c = ps.plate(pl.number).connectors
        if side == "east":
            out |= {(f"x{pl.x_mm + pl.width_mm:.3f}", pl.y_mm + p) for p in c.east.positions}
        elif side == "west":
            out |= {(f"x{pl.x_mm:.3f}", pl.y_mm + p) for p in c.west.positions}
        elif side == "north":
            out |= {(f"y{pl.y_mm + pl.depth_mm:.3f}", pl.x_mm + p) for p in c.north.positions}
        else:
            out |= {(f"y{pl.y_mm:.3f}", pl.x_mm + p) for p in c.south.positions}
    return {(k, round(v, 3)) for k, v in out}


@settings(max_examples=200, deadline=None)
@given(sizes, sizes, profiles)
def test_every_male_tab_meets_a_female_socket(w: float, d: float, profile: PrinterProfile) -> None:
    ps = plan_plates(w, d, profile, PlanOptions(connector=ConnectorStyle.PUZZLE))
    assert _tabs(ps, "east") == _tabs(ps, "west")
    assert _tabs(ps, "north") == _tabs(ps, "south")


def test_known_plan_for_the_demo_drawer() -> None:
    ps = plan_plates(523, 387, PROFILES["bambu-a1"], PlanOptions(magnets=True))
    assert (ps.cells_x, ps.cells_y) == (12.0, 9.0)
    assert ps.padding.west == ps.padding.east == 9.5
    assert ps.padding.south == ps.padding.north == 4.5
    assert ps.columns == 3
    assert ps.total_plates == 6
    assert all(p.magnets for p in ps.plates)


def test_half_cells_and_identical_plates_are_grouped() -> None:
    ps = plan_plates(1000, 1000, PROFILES["prusa-mk4"])
    assert (ps.cells_x, ps.cells_y) == (23.5, 23.5)
    assert len(ps.plates) < ps.total_plates
    assert max(p.count for p in ps.plates) > 1


def test_small_drawer_is_one_plate_without_connectors() -> None:
    ps = plan_plates(100, 100, PROFILES["bambu-a1"])
    (plate,) = ps.plates
    assert plate.count == 1 and plate.cells_x == 2 and plate.padding.west == 8
    assert plate.connectors.north.kind == "none"
    assert plate.corners.south_west and plate.corners.north_east


@pytest.mark.parametrize("w,d", [(41, 200), (200, 10), (0, 100), (-5, 100), (float("nan"), 100)])
def test_impossible_drawers_raise_plan_error(w: float, d: float) -> None:
    with pytest.raises(PlanError):
        plan_plates(w, d, PROFILES["bambu-a1"])


def test_tiny_bed_raises_plan_error() -> None:
    tiny = PrinterProfile("tiny", "TINY", "Tiny", 129, 300, "tiny")
    with pytest.raises(PlanError, match="too small"):
        plan_plates(300, 300, tiny)


any_bed = st.builds(
    lambda x, y: PrinterProfile("custom", "CUSTOM", "Custom", x, y, "custom"),
    st.integers(min_value=130, max_value=420),
    st.integers(min_value=130, max_value=420),
)


@settings(max_examples=1000, deadline=None)
@given(sizes, sizes, any_bed)
def test_any_reasonable_bed_gets_a_valid_staggered_plan(
    w: float, d: float, profile: PrinterProfile
) -> None:
    ps = plan_plates(w, d, profile)
    for plate in ps.plates:
        assert plate.width_mm <= profile.bed_x_mm - CONNECTOR_MARGIN_MM + 1e-6
        assert plate.depth_mm <= profile.bed_y_mm - CONNECTOR_MARGIN_MM + 1e-6
    cols = _columns(ps)
    seams = {c: {round(y, 3) for y, _ in rows[1:]} for c, rows in cols.items()}
    for c in range(ps.columns - 1):
        assert not seams[c] & seams[c + 1]


def test_a_drawer_above_the_platform_ceiling_is_refused_before_planning() -> None:
    with pytest.raises(PlanError, match="limit of 1200 mm"):
        plan_plates(1200.5, 400, PROFILES["bambu-a1"])


def test_the_stagger_search_has_a_fixed_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cost cannot grow past the budget: a search that would list more plans stops, named."""
    monkeypatch.setattr(planner, "COMPOSITION_BUDGET", 10)
    planner._plan.cache_clear()
    try:
        with pytest.raises(PlanError, match="more than 10 row plans"):
            plan_plates(900, 986, PROFILES["bambu-a1-mini"])
    finally:
        planner._plan.cache_clear()
