from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forma3d.domain.orders.expansion import expand_line_item
from forma3d.domain.printing.jobs import order_job_key
from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping
from forma3d.domain.printing.states import JobPurpose

LAMP = ProductMapping(
    sku="LAMP",
    parts=(
        AssemblyPart("shade", "file-shade", quantity=1, grams=Decimal("80")),
        AssemblyPart("leg", "file-leg", quantity=3, grams=Decimal("12.5")),
    ),
)


def test_one_job_per_part_copy_with_copy_numbers_per_part() -> None:
    specs = expand_line_item("o1", "li1", 2, LAMP)
    assert [(s.part_id, s.copy_number) for s in specs] == [
        ("shade", 1),
        ("shade", 2),
        *[("leg", n) for n in range(1, 7)],
    ]
    assert {s.purpose for s in specs} == {JobPurpose.ORDER}
    assert {(s.order_id, s.line_item_id) for s in specs} == {("o1", "li1")}
    assert specs[0].file_id == "file-shade"
    assert specs[0].key == order_job_key("o1", "li1", "shade", 1)


def test_units_from_stock_are_not_printed() -> None:
    specs = expand_line_item("o1", "li1", 3, LAMP, from_stock=2)
    assert Counter(s.part_id for s in specs) == {"shade": 1, "leg": 3}
    assert expand_line_item("o1", "li1", 3, LAMP, from_stock=3) == []


@pytest.mark.parametrize(("quantity", "from_stock"), [(0, 0), (2, 3), (2, -1)])
def test_bad_quantities_are_rejected(quantity: int, from_stock: int) -> None:
    with pytest.raises(ValueError, match="line item li1"):
        expand_line_item("o1", "li1", quantity, LAMP, from_stock=from_stock)


@given(
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=5),
)
def test_expansion_is_deterministic_with_unique_keys(part_quantities: list[int], qty: int) -> None:
    mapping = ProductMapping(
        "SKU",
        tuple(AssemblyPart(f"p{i}", f"f{i}", quantity=q) for i, q in enumerate(part_quantities)),
    )
    first = expand_line_item("order-9", "line-1", qty, mapping)
    assert first == expand_line_item("order-9", "line-1", qty, mapping)
    assert len(first) == mapping.parts_per_unit * qty == sum(part_quantities) * qty
    assert len({s.key for s in first}) == len(first)
