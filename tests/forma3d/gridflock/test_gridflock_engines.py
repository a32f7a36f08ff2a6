"""The Manifold engine makes the same plates as the OpenSCAD reference, measured on random plates.

Each plate is built by both engines from the same parameters and compared: volume within 0.5 %,
bounding box within 0.05 mm, both closed, and the surface distance within 0.1 mm. Plates are
small (up to 2.5 x 2.5 cells) so OpenSCAD's share of the suite stays about a minute; sizes, half
cells, padding, connector sides, magnets, rounded corners and numbers vary.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from forma3d.domain.gridflock.planner import (
    FLOOR_MM,
    MAGNET_FLOOR_MM,
    PITCH_MM,
    PROFILE_HEIGHT_MM,
    Connectors,
    Corners,
    Edge,
    Padding,
    Plate,
)
from forma3d.gridflock.meshdiff import compare_meshes, surface_distance
from forma3d.gridflock.stl import generate_plate

PLATES = 50
SEED = 16
OPENSCAD_AT_ONCE = 2


def random_plate(rng: random.Random, number: int) -> Plate:
    cells_x = rng.choice((1.0, 1.5, 2.0, 2.5))
    cells_y = rng.choice((1.0, 1.5, 2.0, 2.5))
    padding = Padding(*(rng.choice((0.0, 0.0, round(rng.uniform(0.5, 9.5), 2)))
                        for _ in range(4)))
    magnets = rng.random() < 0.5
    along_x = tuple(padding.west + PITCH_MM * i + PITCH_MM / 2 for i in range(int(cells_x)))
    along_y = tuple(padding.south + PITCH_MM * i + PITCH_MM / 2 for i in range(int(cells_y)))

    def edge(kind: str, positions: tuple[float, ...]) -> Edge:
        return Edge(kind, positions) if rng.random() < 0.5 else Edge()  # type: ignore[arg-type]

    connectors = Connectors(north=edge("male", along_x), east=edge("male", along_y),
                            south=edge("female", along_x), west=edge("female", along_y))
    corners = Corners(*(rng.random() < 0.5 for _ in range(4)))
    floor = MAGNET_FLOOR_MM if magnets else FLOOR_MM
    return Plate(number=number, cells_x=cells_x, cells_y=cells_y, padding=padding,
                 connectors=connectors, corners=corners, magnets=magnets,
                 height_mm=floor + PROFILE_HEIGHT_MM, count=1, key=f"random-{number}")


def random_plates() -> list[Plate]:
    rng = random.Random(SEED)
    return [random_plate(rng, rng.choice((1, 2, 7, 8, 10, 12, 39, 88, 99, 100 + n)))
            for n in range(PLATES)]


@pytest.mark.slow  # 50 plates through OpenSCAD (about a minute): scripts/test-slow
async def test_manifold_plates_equal_openscad_on_random_plates(tmp_path: Path) -> None:
    plates = random_plates()
    assert len(plates) >= 50
    slots = asyncio.Semaphore(OPENSCAD_AT_ONCE)

    async def both(i: int, plate: Plate) -> str | None:
        fast = await generate_plate(plate, tmp_path / f"{i}-manifold.stl", "manifold")
        async with slots:
            ref = await generate_plate(plate, tmp_path / f"{i}-openscad.stl", "openscad")
        d = await asyncio.to_thread(compare_meshes, fast.path, ref.path)
        ok = (d.closed_a and d.closed_b and d.volume_diff_pct <= 0.5
              and d.bbox_diff_mm <= 0.05 and d.surface_distance_mm <= 0.1)
        return None if ok else f"plate {i} ({plate.key}, {plate}): {d}"

    failures = [f for f in await asyncio.gather(*(both(i, p) for i, p in enumerate(plates)))
                if f is not None]
    assert failures == []


async def test_both_engines_cut_the_chosen_magnet_hole(tmp_path: Path) -> None:
    """Magnet diameter and depth are parameters of both engines (a preset's 8 x 3 mm, and
    others): the meshes still agree."""
    rng = random.Random(SEED + 1)
    plates = []
    for n, (diameter, depth) in enumerate(((8.0, 3.0), (5.2, 2.0), (10.2, 2.4))):
        plate = random_plate(rng, n + 1)
        plates.append(replace(plate, magnets=True, magnet_diameter_mm=diameter,
                              magnet_depth_mm=depth, height_mm=max(MAGNET_FLOOR_MM, depth + 0.6)
                              + PROFILE_HEIGHT_MM))  # every plate has a whole cell
    for i, plate in enumerate(plates):
        fast = await generate_plate(plate, tmp_path / f"{i}-manifold.stl", "manifold")
        ref = await generate_plate(plate, tmp_path / f"{i}-openscad.stl", "openscad")
        d = await asyncio.to_thread(compare_meshes, fast.path, ref.path)
        assert d.closed_a and d.closed_b, d
        assert d.volume_diff_pct <= 0.5 and d.bbox_diff_mm <= 0.05, d
        assert d.surface_distance_mm <= 0.1, d


def test_random_plates_cover_the_variations() -> None:
    """The set exercises what the .scad varies, so equality covers every branch of it."""
    plates = random_plates()
    assert {p.magnets for p in plates} == {True, False}
    assert any(p.cells_x % 1 for p in plates) and any(p.cells_y % 1 for p in plates)
    for side in ("north", "east", "south", "west"):
        assert any(getattr(p.connectors, side).positions for p in plates)
    assert any(p.number >= 10 for p in plates) and any(p.number < 10 for p in plates)
    assert any(p.corners.south_west for p in plates) and any(p.padding.west for p in plates)


def _box(x0: float, size: float) -> np.ndarray:
    """A cube's 12 triangles from corner (x0, 0, 0)."""
    v = np.array([[x0 + x, y, z] for x in (0, size) for y in (0, size) for z in (0, size)])
    faces = [(0, 2, 3), (0, 3, 1), (4, 5, 7), (4, 7, 6), (0, 1, 5), (0, 5, 4),
             (2, 6, 7), (2, 7, 3), (0, 4, 6), (0, 6, 2), (1, 3, 7), (1, 7, 5)]
    return np.array([[v[a], v[c], v[b]] for a, b, c in faces], dtype=np.float64)


@pytest.mark.parametrize(("shift", "expected"), [(0.0, 0.0), (0.03, 0.03), (0.3, 0.3)])
def test_surface_distance_measures_a_shift(shift: float, expected: float) -> None:
    """The measure itself: a cube against itself moved by `shift` along X."""
    assert surface_distance(_box(0.0, 10.0), _box(shift, 10.0)) == pytest.approx(expected,
                                                                                  abs=1e-6)


def test_surface_distance_beyond_reach_is_infinite() -> None:
    assert surface_distance(_box(0.0, 10.0), _box(2.0, 10.0), reach=0.5) == float("inf")
