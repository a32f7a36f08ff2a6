"""Print files: G-code stored once per tenant by content hash, and where the farm holds each.

One conflict policy for every writer (upload API, GridFlock, sandbox seeding): the same content
again is the same file, and its first name is kept.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal

from forma3d.db.pool import Connection, Pool


@dataclass(frozen=True)
class StoredFile:
    id: uuid.UUID
    created: bool  # False: this tenant already had the content


async def add_print_file(db: Pool | Connection, tenant_id: uuid.UUID, filename: str,
                         content: bytes, *, estimated_seconds: int | None = None,
                         grams: Decimal | None = None) -> StoredFile:
    """The tenant's file for this content, stored if new."""
    digest = hashlib.sha256(content).hexdigest()
    new_id: uuid.UUID | None = await db.fetchval(
        """INSERT INTO print_files (id, tenant_id, filename, content_hash, size_bytes, content,
                                    estimated_seconds, grams)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (tenant_id, content_hash) DO NOTHING RETURNING id""",
        uuid.uuid4(), tenant_id, filename, digest, len(content), content, estimated_seconds,
        grams)
    if new_id is not None:
        return StoredFile(new_id, True)
    existing: uuid.UUID = await db.fetchval(
        "SELECT id FROM print_files WHERE tenant_id = $1 AND content_hash = $2",
        tenant_id, digest)
    return StoredFile(existing, False)


async def set_farm_file(db: Pool | Connection, file_id: uuid.UUID, farm_file_id: str) -> None:
    """The farm's id of an upload of this file, fresh as of now."""
    await db.execute(
        "UPDATE print_files SET farm_file_id = $2, farm_uploaded_at = now() WHERE id = $1",
        file_id, farm_file_id)


async def forget_farm_files(db: Pool | Connection, tenant_id: uuid.UUID) -> None:
    """The tenant's farm was replaced (a new sandbox): every file must be uploaded again."""
    await db.execute("UPDATE print_files SET farm_file_id = NULL, farm_uploaded_at = NULL"
                     " WHERE tenant_id = $1 AND farm_file_id IS NOT NULL", tenant_id)
