from __future__ import annotations

from forma3d.domain.inventory.states import STOCK_BATCH_MACHINE, StockBatchStatus


def test_batch_ends_completed_or_cancelled() -> None:
    assert STOCK_BATCH_MACHINE.terminal == {StockBatchStatus.COMPLETED, StockBatchStatus.CANCELLED}
    assert STOCK_BATCH_MACHINE.allowed_from(StockBatchStatus.IN_PROGRESS) == {
        StockBatchStatus.COMPLETED,
        StockBatchStatus.CANCELLED,
    }
