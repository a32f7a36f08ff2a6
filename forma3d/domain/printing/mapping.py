"""Product mappings: which printable parts (and how many of each) make one unit of a SKU.

A multi-part product is an assembly; each part names the SimplyPrint file that prints it and
what it weighs, so both job expansion and parcel weight come from the same record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class AssemblyPart:
    """One printable component; `quantity` is how many of it go into one unit of the product."""

    part_id: str
    file_id: str
    quantity: int = 1
    grams: Decimal = Decimal(0)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.part_id:
            raise ValueError("assembly part: part_id is empty")
        if self.quantity < 1:
            raise ValueError(f"assembly part {self.part_id}: quantity {self.quantity} < 1")
        if Decimal(self.grams) < 0:
            raise ValueError(f"assembly part {self.part_id}: negative weight {self.grams}")


@dataclass(frozen=True, slots=True)
class ProductMapping:
    """The link between a shop SKU and the parts that are printed for one unit of it."""

    sku: str
    parts: tuple[AssemblyPart, ...]
    mapping_id: str = ""

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"product mapping {self.sku}: no parts")
        ids = [p.part_id for p in self.parts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"product mapping {self.sku}: duplicate part ids {ids}")

    @property
    def parts_per_unit(self) -> int:
        """Print jobs needed for one unit of the product."""
        return sum(p.quantity for p in self.parts)

    @property
    def grams_per_unit(self) -> Decimal:
        return sum((Decimal(p.grams) * p.quantity for p in self.parts), Decimal(0))


def part_copies(mapping: ProductMapping, units: int) -> Iterator[tuple[AssemblyPart, int]]:
    """Every (part, copy number) needed for `units` of the product, copy numbers 1..n per part.

    Deterministic order (mapping order, then copy), so re-expanding yields identical keys.
    """
    if units < 0:
        raise ValueError(f"product mapping {mapping.sku}: negative units {units}")
    for part in mapping.parts:
        for copy_number in range(1, part.quantity * units + 1):
            yield part, copy_number
