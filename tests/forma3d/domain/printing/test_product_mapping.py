from __future__ import annotations

from decimal import Decimal

import pytest

from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping, part_copies


def test_parts_per_unit_and_grams_count_part_quantities() -> None:
    mapping = ProductMapping(
        "BOX",
        (
            AssemblyPart("lid", "f1", quantity=1, grams=Decimal("20.5")),
            AssemblyPart("clip", "f2", quantity=4, grams=Decimal("2")),
        ),
    )
    assert mapping.parts_per_unit == 5
    assert mapping.grams_per_unit == Decimal("28.5")


def test_part_copies_number_each_part_from_one() -> None:
    mapping = ProductMapping("BOX", (AssemblyPart("a", "f", 2), AssemblyPart("b", "g", 1)))
    copies = [(p.part_id, n) for p, n in part_copies(mapping, 2)]
    assert copies == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 1), ("b", 2)]
    assert list(part_copies(mapping, 0)) == []
    with pytest.raises(ValueError, match="negative units"):
        list(part_copies(mapping, -1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"part_id": "", "file_id": "f"}, "part_id is empty"),
        ({"part_id": "p", "file_id": "f", "quantity": 0}, "quantity 0 < 1"),
        ({"part_id": "p", "file_id": "f", "grams": Decimal(-1)}, "negative weight"),
    ],
)
def test_invalid_parts_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AssemblyPart(**kwargs)  # type: ignore[arg-type]


def test_mapping_needs_parts_with_unique_ids() -> None:
    with pytest.raises(ValueError, match="no parts"):
        ProductMapping("X", ())
    with pytest.raises(ValueError, match="duplicate part ids"):
        ProductMapping("X", (AssemblyPart("a", "f"), AssemblyPart("a", "g")))
