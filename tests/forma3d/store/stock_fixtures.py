"""A product mapping to stock, shared by the stock store and handler tests."""

from __future__ import annotations

import uuid

from forma3d.db.pool import Pool
from forma3d.store import files, mappings


async def product(pool: Pool, tenant_id: uuid.UUID, sku: str = "CUBE", *,
                  copies: int = 1, parts: int = 1) -> uuid.UUID:
    """A mapping of `parts` parts (each `copies` per unit); returns its id."""
    specs = []
    for n in range(parts):
        stored = await files.add_print_file(pool, tenant_id, f"{sku}-{n}.gcode",
                                            uuid.uuid4().hex.encode())
        specs.append(mappings.PartSpec(f"part-{n}", stored.id, copies))
    async with pool.acquire() as conn, conn.transaction():
        return await mappings.put_mapping(conn, tenant_id, mappings.MappingSpec(sku), specs)
