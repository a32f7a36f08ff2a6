"""Fit the GridFlock quote's estimate model on really sliced plates, and write its coefficients
into forma3d/domain/gridflock/quote.py.

    .venv/bin/python scripts/fit_gridflock_estimate.py            # fit, print, write
    .venv/bin/python scripts/fit_gridflock_estimate.py --dry-run  # fit and print only

Plates of several drawers (with and without magnets, whole and half cells, corner and middle
pieces) are made by the manifold engine and sliced by PrusaSlicer for the Prusa MK4 with the
shared process and PLA profiles; print seconds and grams are then fitted by least squares as
linear in (1, footprint mm², footprint x floor mm³) (`quote.features`). Takes a minute or two
(more on a busy machine).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from forma3d.domain.gridflock import PlanOptions, get_profile, plan_plates  # noqa: E402
from forma3d.domain.gridflock.quote import features  # noqa: E402
from forma3d.gridflock.plates import make_plate  # noqa: E402

DRAWERS = ((100, 100), (150, 120), (230, 190), (300, 200), (420, 380), (523, 387))
PER_SETTING = 7
"""Unique plates sliced with and without magnets each (a slice takes seconds)."""
PROFILE = "prusa-mk4"
QUOTE = ROOT / "forma3d" / "domain" / "gridflock" / "quote.py"


async def sliced(cache: Path) -> list[tuple[tuple[float, float, float], int, float]]:
    profile = get_profile(PROFILE)
    seen: set[str] = set()
    rows = []
    for magnets in (False, True):
        taken = 0
        for width, depth in DRAWERS:
            plan = plan_plates(width, depth, profile, PlanOptions(magnets=magnets))
            for plate in plan.plates[:2]:
                if plate.key in seen or taken >= PER_SETTING:
                    continue
                taken += 1
                seen.add(plate.key)
                r = await make_plate("gcode", plate, profile, cache)
                if r.failed_step or r.print_seconds is None or r.filament_g is None:
                    raise SystemExit(f"plate failed: {r.error}")
                rows.append((features(plate), r.print_seconds, r.filament_g))
                print(f"{plate.width_mm:6.1f} x {plate.depth_mm:6.1f} floor "
                      f"{plate.height_mm - 4.65:.1f}: {r.print_seconds:6d} s "
                      f"{r.filament_g:6.1f} g", flush=True)
    return rows


def fit(rows: list[tuple[tuple[float, float, float], int, float]]
        ) -> tuple[list[float], list[float], float, float]:
    x = np.array([r[0] for r in rows])
    seconds = np.array([r[1] for r in rows], dtype=float)
    grams = np.array([r[2] for r in rows], dtype=float)
    cs = np.linalg.lstsq(x, seconds, rcond=None)[0]
    cg = np.linalg.lstsq(x, grams, rcond=None)[0]
    err_s = float(np.max(np.abs(x @ cs - seconds) / seconds))
    err_g = float(np.max(np.abs(x @ cg - grams) / grams))
    return [float(v) for v in cs], [float(v) for v in cg], err_s, err_g


def write(cs: list[float], cg: list[float], n: int, err_s: float, err_g: float) -> None:
    text = QUOTE.read_text()
    block = (f'ESTIMATE_FITTED_ON = "{n} plates, {PROFILE}, PrusaSlicer, PLA; largest error '
             f'{err_s:.0%} time, {err_g:.0%} grams"\n'
             f"ESTIMATE_SECONDS = ({cs[0]!r}, {cs[1]!r}, {cs[2]!r})\n"
             f"ESTIMATE_GRAMS = ({cg[0]!r}, {cg[1]!r}, {cg[2]!r})\n")
    text = re.sub(r"ESTIMATE_FITTED_ON = .*\nESTIMATE_SECONDS = .*\nESTIMATE_GRAMS = .*\n",
                  block, text)
    QUOTE.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        rows = asyncio.run(sliced(Path(cache)))
    cs, cg, err_s, err_g = fit(rows)
    print(f"seconds = {cs}\ngrams = {cg}\n{len(rows)} plates; largest relative error "
          f"{err_s:.1%} (time), {err_g:.1%} (grams)")
    if not args.dry_run:
        write(cs, cg, len(rows), err_s, err_g)
        print(f"wrote {QUOTE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
