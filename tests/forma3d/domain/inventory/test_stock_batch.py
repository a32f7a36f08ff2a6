from __future__ import annotations

from collections import Counter

import pytest

from forma3d.domain.inventory.batch import batch_outcome, expand_stock_batch, units_produced
from forma3d.domain.inventory.states import StockBatchStatus
from forma3d.domain.printing.mapping import AssemblyPart, ProductMapping
from forma3d.domain.printing.states import JobPurpose, PrintJobStatus

J = PrintJobStatus
MAPPING = ProductMapping("LAMP", (AssemblyPart("shade", "f1", 1), AssemblyPart("leg", "f2", 3)))


def test_batch_jobs_are_stock_purpose_with_batch_keys() -> None:
    specs = expand_stock_batch("b7", MAPPING, 2)
    assert Counter(s.part_id for s in specs) == {"shade": 2, "leg": 6}
    assert {s.purpose for s in specs} == {JobPurpose.STOCK}
    assert {s.stock_batch_id for s in specs} == {"b7"}
    assert {s.order_id for s in specs} == {None}
    assert specs[0].key == "stock:b7:shade:1"
    assert len({s.key for s in specs}) == len(specs)
    with pytest.raises(ValueError, match="units 0"):
        expand_stock_batch("b7", MAPPING, 0)


def test_units_produced_counts_complete_sets_only() -> None:
    assert units_produced(MAPPING, {"shade": 2, "leg": 5}) == 1
    assert units_produced(MAPPING, {"shade": 2, "leg": 6}) == 2
    assert units_produced(MAPPING, {"leg": 6}) == 0


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        ([J.COMPLETED, J.COMPLETED], StockBatchStatus.COMPLETED),
        ([J.COMPLETED, J.CANCELLED], StockBatchStatus.COMPLETED),
        ([J.CANCELLED, J.CANCELLED], StockBatchStatus.CANCELLED),
        ([J.COMPLETED, J.PRINTING], StockBatchStatus.IN_PROGRESS),
        ([J.COMPLETED, J.FAILED], StockBatchStatus.IN_PROGRESS),
        ([], StockBatchStatus.IN_PROGRESS),
    ],
)
def test_batch_outcome(jobs: list[PrintJobStatus], expected: StockBatchStatus) -> None:
    assert batch_outcome(jobs) == expected
