"""Stock batches: the STOCK-purpose print jobs of one replenishment cycle for one product."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from forma3d.domain.inventory.states import StockBatchStatus
from forma3d.domain.printing.jobs import PrintJobSpec, stock_job_key
from forma3d.domain.printing.mapping import ProductMapping, part_copies
from forma3d.domain.printing.states import JobPurpose, PrintJobStatus


def expand_stock_batch(batch_id: str, mapping: ProductMapping, units: int) -> list[PrintJobSpec]:
    """Print-job specs for `units` of a product built to stock, keyed by batch x part x copy."""
    if units < 1:
        raise ValueError(f"stock batch {batch_id}: units {units} < 1")
    return [
        PrintJobSpec(
            key=stock_job_key(batch_id, part.part_id, copy_number),
            purpose=JobPurpose.STOCK,
            part_id=part.part_id,
            file_id=part.file_id,
            copy_number=copy_number,
            stock_batch_id=batch_id,
        )
        for part, copy_number in part_copies(mapping, units)
    ]


def units_produced(mapping: ProductMapping, completed_parts: Mapping[str, int]) -> int:
    """Whole product units a batch's completed jobs make (the smallest part set decides)."""
    return min(completed_parts.get(p.part_id, 0) // p.quantity for p in mapping.parts)


def batch_outcome(job_statuses: Iterable[PrintJobStatus]) -> StockBatchStatus:
    """A batch's status from its jobs: COMPLETED once every job is completed or cancelled (at
    least one completed), CANCELLED when all were cancelled, else IN_PROGRESS. A FAILED job
    keeps the batch open until an operator requeues or cancels it, so failures stay visible."""
    statuses = list(job_statuses)
    settled = (PrintJobStatus.COMPLETED, PrintJobStatus.CANCELLED)
    if not statuses or not all(s in settled for s in statuses):
        return StockBatchStatus.IN_PROGRESS
    if all(s == PrintJobStatus.CANCELLED for s in statuses):
        return StockBatchStatus.CANCELLED
    return StockBatchStatus.COMPLETED
