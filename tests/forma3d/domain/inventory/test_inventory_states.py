from __future__ import annotations

import pytest

from forma3d.domain.inventory.states import (
    STOCK_BATCH_MACHINE,
    Direction,
    LedgerType,
    StockBatchStatus,
    check_direction,
)


def test_batch_ends_completed_or_cancelled() -> None:
    assert STOCK_BATCH_MACHINE.terminal == {StockBatchStatus.COMPLETED, StockBatchStatus.CANCELLED}
    assert STOCK_BATCH_MACHINE.allowed_from(StockBatchStatus.IN_PROGRESS) == {
        StockBatchStatus.COMPLETED,
        StockBatchStatus.CANCELLED,
    }


@pytest.mark.parametrize(
    ("kind", "allowed"),
    [
        (LedgerType.PRODUCED, {Direction.IN}),
        (LedgerType.CONSUMED, {Direction.OUT}),
        (LedgerType.SCRAPPED, {Direction.OUT}),
        (LedgerType.ADJUSTED, {Direction.IN, Direction.OUT}),
    ],
)
def test_each_ledger_type_moves_stock_only_its_way(
    kind: LedgerType, allowed: set[Direction]
) -> None:
    for direction in Direction:
        if direction in allowed:
            check_direction(kind, direction)
        else:
            with pytest.raises(
                ValueError, match=f"{kind.value} entries cannot be {direction.value}"
            ):
                check_direction(kind, direction)
