"""Product mappings and their parts: which print files make one unit of a SKU (and variant).

Parts keep their ids when a mapping is edited (print-job keys name them); parts left out of an
edit are removed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from forma3d.db.pool import Connection


@dataclass(frozen=True)
class PartSpec:
    name: str
    file_id: uuid.UUID
    quantity: int = 1
    grams: Decimal = Decimal(0)
    print_profile: str | None = None
    required_tags: list[str] = field(default_factory=list)
    id: uuid.UUID | None = None  # an existing part to keep


@dataclass(frozen=True)
class MappingSpec:
    sku: str
    name: str | None = None
    variant_id: str = ""
    packaging_grams: Decimal = Decimal(0)
    packaging_cm: tuple[Decimal, Decimal, Decimal] | None = None


def _box(spec: MappingSpec) -> list[Decimal] | None:
    return None if spec.packaging_cm is None else list(spec.packaging_cm)


async def create_mapping(conn: Connection, tenant_id: uuid.UUID, spec: MappingSpec,
                         parts: Sequence[PartSpec]) -> uuid.UUID:
    """A new mapping with its parts (asyncpg.UniqueViolationError if the SKU has one)."""
    mapping_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO product_mappings (id, tenant_id, sku, variant_id, name, packaging_grams,
                                         packaging_cm)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        mapping_id, tenant_id, spec.sku, spec.variant_id, spec.name or spec.sku,
        spec.packaging_grams, _box(spec))
    await replace_parts(conn, tenant_id, mapping_id, parts)
    return mapping_id


async def update_mapping(conn: Connection, tenant_id: uuid.UUID, mapping_id: uuid.UUID,
                         spec: MappingSpec, parts: Sequence[PartSpec]) -> bool:
    """Replace a mapping's fields and parts; False if it does not exist."""
    status = await conn.execute(
        """UPDATE product_mappings SET sku = $3, variant_id = $4, name = $5,
               packaging_grams = $6, packaging_cm = $7, updated_at = now()
           WHERE tenant_id = $1 AND id = $2""",
        tenant_id, mapping_id, spec.sku, spec.variant_id, spec.name or spec.sku,
        spec.packaging_grams, _box(spec))
    if status.endswith(" 0"):
        return False
    await replace_parts(conn, tenant_id, mapping_id, parts)
    return True


async def put_mapping(conn: Connection, tenant_id: uuid.UUID, spec: MappingSpec,
                      parts: Sequence[PartSpec]) -> uuid.UUID:
    """Create the SKU's mapping or replace its parts wholesale (seeding a known catalogue)."""
    mapping_id: uuid.UUID = await conn.fetchval(
        """INSERT INTO product_mappings (id, tenant_id, sku, variant_id, name)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, sku, variant_id) DO UPDATE SET updated_at = now()
           RETURNING id""", uuid.uuid4(), tenant_id, spec.sku, spec.variant_id,
        spec.name or spec.sku)
    await replace_parts(conn, tenant_id, mapping_id, parts)
    return mapping_id


async def replace_parts(conn: Connection, tenant_id: uuid.UUID, mapping_id: uuid.UUID,
                        parts: Sequence[PartSpec]) -> None:
    """Parts with an id are updated in place, others added, the rest removed; order kept."""
    kept = [p.id for p in parts if p.id is not None]
    await conn.execute(
        "DELETE FROM mapping_parts WHERE tenant_id = $1 AND mapping_id = $2 AND NOT id = ANY($3)",
        tenant_id, mapping_id, kept)
    await conn.executemany(
        """INSERT INTO mapping_parts (id, tenant_id, mapping_id, name, file_id, quantity,
                                      print_profile, grams, required_tags, position)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, file_id = EXCLUDED.file_id,
               quantity = EXCLUDED.quantity, print_profile = EXCLUDED.print_profile,
               grams = EXCLUDED.grams, required_tags = EXCLUDED.required_tags,
               position = EXCLUDED.position""",
        [(p.id or uuid.uuid4(), tenant_id, mapping_id, p.name, p.file_id, p.quantity,
          p.print_profile, p.grams, p.required_tags, position)
         for position, p in enumerate(parts)])


async def delete_mapping(conn: Connection, tenant_id: uuid.UUID, mapping_id: uuid.UUID) -> bool:
    """False if there was none (asyncpg.ForeignKeyViolationError if orders use it)."""
    deleted = await conn.fetchval(
        "DELETE FROM product_mappings WHERE tenant_id = $1 AND id = $2 RETURNING id",
        tenant_id, mapping_id)
    return deleted is not None
