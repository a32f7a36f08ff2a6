from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from forma3d.domain.gridflock.planner import ConnectorStyle, PlanOptions, plan_plates
from forma3d.domain.gridflock.profiles import PROFILES
from forma3d.gridflock.preview import preview_payload, render_svg

NS = "{http://www.w3.org/2000/svg}"


def test_demo_drawer_drawing_has_every_plate_number_and_connector() -> None:
    ps = plan_plates(523, 387, PROFILES["bambu-a1"], PlanOptions(magnets=True))
    root = ET.fromstring(render_svg(ps))
    groups = root.findall(f"{NS}g")
    assert len(groups) == ps.total_plates
    numbers = sorted(int(g.get("data-number", "0")) for g in groups)
    assert numbers == sorted(p.number for p in ps.placements)
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert sorted(int(t or "0") for t in texts) == numbers
    assert root.findall(f".//{NS}path[@class='tab']")
    assert root.findall(f".//{NS}rect[@fill='url(#pad)']")  # padding is shaded
    assert root.get("viewBox", "").endswith("547 411")  # drawer plus a 12 mm margin


def test_no_connectors_no_tabs_and_no_padding_when_the_drawer_is_whole_cells() -> None:
    ps = plan_plates(420, 420, PROFILES["prusa-mk4"], PlanOptions(connector=ConnectorStyle.NONE))
    svg = render_svg(ps)
    assert 'class="tab"' not in svg and "url(#pad)" not in svg.split("</defs>")[1]


@pytest.mark.parametrize("profile_id", sorted(PROFILES))
def test_largest_drawer_renders_a_compact_valid_document(profile_id: str) -> None:
    """Called on every keystroke: the biggest allowed drawer must stay a small document."""
    ps = plan_plates(1000, 1000, PROFILES[profile_id])
    payload = preview_payload(ps)
    root = ET.fromstring(payload["svg"])
    assert len(root.findall(f"{NS}g")) == ps.total_plates
    assert sum(1 for _ in root.iter()) < 40 * ps.total_plates + 20
    assert len(payload["svg"]) < 200_000
    assert payload["plan"]["total_plates"] == ps.total_plates
