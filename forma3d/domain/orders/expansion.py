"""Expanding an order's line item into print-job specs through its product mapping.

Each part of the product is printed part.quantity x units times, each copy numbered 1..n within
its part, and keyed by order x line item x part x copy so re-running the expansion after a crash
or a redelivered message creates nothing twice.
"""

from __future__ import annotations

from forma3d.domain.printing.jobs import PrintJobSpec, order_job_key
from forma3d.domain.printing.mapping import ProductMapping, part_copies
from forma3d.domain.printing.states import JobPurpose


def expand_line_item(
    order_id: str,
    line_item_id: str,
    quantity: int,
    mapping: ProductMapping,
    *,
    from_stock: int = 0,
) -> list[PrintJobSpec]:
    """Print-job specs for a line item of `quantity` units, `from_stock` of which come from stock.

    The split between stock and print is decided once and stored with the line item; passing the
    same numbers again gives the same specs and keys.
    """
    if quantity < 1:
        raise ValueError(f"line item {line_item_id}: quantity {quantity} < 1")
    if not 0 <= from_stock <= quantity:
        raise ValueError(f"line item {line_item_id}: from_stock {from_stock} not in 0..{quantity}")
    return [
        PrintJobSpec(
            key=order_job_key(order_id, line_item_id, part.part_id, copy_number),
            purpose=JobPurpose.ORDER,
            part_id=part.part_id,
            file_id=part.file_id,
            copy_number=copy_number,
            order_id=order_id,
            line_item_id=line_item_id,
        )
        for part, copy_number in part_copies(mapping, quantity - from_stock)
    ]
