"""SVG drawing of a plate set for the live preview: plates, numbers, connectors, padding.

Pure string building in drawer millimetres (the viewBox), so the browser scales it. The cell grid
is one path per plate and nothing is measured or laid out twice, so a 1000 x 1000 mm drawer is
still a few hundred elements: cheap enough to redraw on every keystroke.
"""

from __future__ import annotations

from html import escape
from typing import Any

from forma3d.domain.gridflock.planner import (
    CONNECTOR_DEPTH_MM,
    HALF_MM,
    PITCH_MM,
    Placement,
    Plate,
    PlateSet,
)

MARGIN_MM = 12.0
CORNER_R = 4.0
_TAB_NECK = 6.0
_TAB_HEAD = 9.0


def _n(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _fill(number: int) -> str:
    """A distinct pastel per plate number, so identical plates share a colour."""
    return f"hsl({(number * 137) % 360},55%,82%)"


def _outline(x: float, y: float, w: float, h: float, plate: Plate) -> str:
    """Plate outline in SVG space (y down), rounding only the set's outer corners."""
    c = plate.corners
    r_sw, r_se = (CORNER_R if c.south_west else 0.0), (CORNER_R if c.south_east else 0.0)
    r_ne, r_nw = (CORNER_R if c.north_east else 0.0), (CORNER_R if c.north_west else 0.0)
    # In SVG space the top edge is north.
    parts = [f"M{_n(x + r_nw)},{_n(y)}", f"H{_n(x + w - r_ne)}"]
    if r_ne:
        parts.append(f"A{_n(r_ne)},{_n(r_ne)} 0 0 1 {_n(x + w)},{_n(y + r_ne)}")
    parts.append(f"V{_n(y + h - r_se)}")
    if r_se:
        parts.append(f"A{_n(r_se)},{_n(r_se)} 0 0 1 {_n(x + w - r_se)},{_n(y + h)}")
    parts.append(f"H{_n(x + r_sw)}")
    if r_sw:
        parts.append(f"A{_n(r_sw)},{_n(r_sw)} 0 0 1 {_n(x)},{_n(y + h - r_sw)}")
    parts.append(f"V{_n(y + r_nw)}")
    if r_nw:
        parts.append(f"A{_n(r_nw)},{_n(r_nw)} 0 0 1 {_n(x + r_nw)},{_n(y)}")
    return "".join(parts) + "Z"


def _grid(x: float, y: float, plate: Plate) -> str:
    """Cell boundaries inside a plate, as one path (x, y: SVG top-left of the plate)."""
    p = plate.padding
    gx0, gy_top = x + p.west, y + p.north
    gw, gh = plate.cells_x * PITCH_MM, plate.cells_y * PITCH_MM
    cuts_x = [i * PITCH_MM for i in range(int(plate.cells_x) + 1)] + [gw]
    cuts_y = [j * PITCH_MM for j in range(int(plate.cells_y) + 1)] + [gh]
    d = [f"M{_n(gx0 + cx)},{_n(gy_top)}v{_n(gh)}" for cx in sorted(set(cuts_x))]
    # Rows count from the south edge of the grid, which is its bottom in SVG space.
    d += [f"M{_n(gx0)},{_n(gy_top + gh - cy)}h{_n(gw)}" for cy in sorted(set(cuts_y))]
    return "".join(d)


def _padding_rects(x: float, y: float, w: float, h: float, plate: Plate) -> list[str]:
    p = plate.padding
    rects = []
    for rx, ry, rw, rh in (
        (x, y, w, p.north),
        (x, y + h - p.south, w, p.south),
        (x, y, p.west, h),
        (x + w - p.east, y, p.east, h),
    ):
        if rw > 0 and rh > 0:
            rects.append(
                f'<rect x="{_n(rx)}" y="{_n(ry)}" width="{_n(rw)}" height="{_n(rh)}" '
                'fill="url(#pad)"/>'
            )
    return rects


def _tabs(x: float, y: float, w: float, plate: Plate) -> str:
    """Male tabs across the plate's north and east seams (the female side is where they land)."""
    d = []
    neck, head, depth = _TAB_NECK / 2, _TAB_HEAD / 2, CONNECTOR_DEPTH_MM
    for u in plate.connectors.north.positions:
        cx = x + u
        d.append(
            f"M{_n(cx - neck)},{_n(y)}L{_n(cx - head)},{_n(y - depth)}"
            f"L{_n(cx + head)},{_n(y - depth)}L{_n(cx + neck)},{_n(y)}Z"
        )
    h = plate.depth_mm
    for u in plate.connectors.east.positions:
        cy = y + h - u
        d.append(
            f"M{_n(x + w)},{_n(cy - neck)}L{_n(x + w + depth)},{_n(cy - head)}"
            f"L{_n(x + w + depth)},{_n(cy + head)}L{_n(x + w)},{_n(cy + neck)}Z"
        )
    return "".join(d)


def _placement(pl: Placement, plate: Plate, drawer_depth: float) -> list[str]:
    x, y = pl.x_mm, drawer_depth - pl.y_mm - pl.depth_mm
    w, h = pl.width_mm, pl.depth_mm
    out = [
        f'<g class="plate" data-number="{plate.number}" data-column="{pl.column}" '
        f'data-row="{pl.row}">',
        f'<path d="{_outline(x, y, w, h, plate)}" fill="{_fill(plate.number)}"/>',
        *_padding_rects(x, y, w, h, plate),
        f'<path d="{_grid(x, y, plate)}" class="grid"/>',
        f'<path d="{_outline(x, y, w, h, plate)}" class="edge"/>',
    ]
    tabs = _tabs(x, y, w, plate)
    if tabs:
        out.append(f'<path d="{tabs}" class="tab"/>')
    size = min(w, h, 4 * HALF_MM) * 0.45
    out.append(
        f'<text x="{_n(x + w / 2)}" y="{_n(y + h / 2)}" font-size="{_n(size)}">'
        f"{plate.number}</text>"
    )
    out.append("</g>")
    return out


def render_svg(plate_set: PlateSet) -> str:
    """The plan as a standalone SVG document, 1 user unit = 1 mm, north up."""
    ps = plate_set
    by_number = {p.number: p for p in ps.plates}
    m = MARGIN_MM
    title = (
        f"{_n(ps.width_mm)} x {_n(ps.depth_mm)} mm drawer, {ps.total_plates} plates "
        f"({len(ps.plates)} unique) for {ps.profile.name}"
    )
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="{_n(-m)} {_n(-m)} {_n(ps.width_mm + 2 * m)} {_n(ps.depth_mm + 2 * m)}" '
        f'width="{_n(ps.width_mm + 2 * m)}mm" height="{_n(ps.depth_mm + 2 * m)}mm">',
        f"<title>{escape(title)}</title>",
        "<defs>"
        '<pattern id="pad" width="4" height="4" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="4" height="4" fill="#d9d9d9"/>'
        '<line x1="0" y1="0" x2="0" y2="4" stroke="#a6a6a6" stroke-width="1.2"/></pattern>'
        "<style>"
        ".grid{fill:none;stroke:#7f7f7f;stroke-width:0.4}"
        ".edge{fill:none;stroke:#222;stroke-width:1.2}"
        ".tab{fill:#444;stroke:none}"
        "text{font-family:sans-serif;font-weight:bold;fill:#222;"
        "text-anchor:middle;dominant-baseline:central}"
        "</style></defs>",
        f'<rect x="0" y="0" width="{_n(ps.width_mm)}" height="{_n(ps.depth_mm)}" '
        'fill="none" stroke="#999" stroke-width="0.6" stroke-dasharray="4 3"/>',
    ]
    for pl in ps.placements:
        parts += _placement(pl, by_number[pl.number], ps.depth_mm)
    parts.append("</svg>")
    return "".join(parts)


def preview_payload(plate_set: PlateSet) -> dict[str, Any]:
    """Response body of `POST /api/v1/gridflock/preview`: the plan as JSON plus its SVG."""
    return {"plan": plate_set.as_dict(), "svg": render_svg(plate_set)}
