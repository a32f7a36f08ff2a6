"""Product mappings written by the tenant's catalog handlers (no Ray, real PostgreSQL)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from forma3d.db.pool import Pool
from forma3d.handlers import catalog
from forma3d.messaging.catalog import (
    CreateMapping,
    DeleteMapping,
    MappingDraft,
    PartDraft,
    ReplaceMapping,
)
from forma3d.messaging.refusals import Conflict, Invalid, NotFound
from forma3d.store.tenants import create_tenant
from tests.forma3d.handlers.conftest import TenantState, command, outbox, print_file

pytestmark = pytest.mark.db


def draft(files: list[uuid.UUID], sku: str = "VASE-01", **extra: Any) -> MappingDraft:
    parts = [PartDraft(name=f"part {i}", file_id=f, quantity=i + 1, grams=Decimal("10.5"))
             for i, f in enumerate(files)]
    return MappingDraft(sku=sku, name="Vase", parts=parts, **extra)


async def parts_of(pool: Pool, mapping_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    rows = await pool.fetch("SELECT id, file_id, quantity FROM mapping_parts"
                            " WHERE mapping_id = $1 ORDER BY position", mapping_id)
    return [(r["id"], r["file_id"], r["quantity"]) for r in rows]


async def test_create_writes_the_mapping_and_announces_the_sku(
        tenant: TenantState, db_pool: Pool) -> None:
    files = [await print_file(db_pool, tenant.tenant_id) for _ in range(2)]
    mapping_id = await command(tenant, catalog.create_mapping,
                               CreateMapping(tenant_id=tenant.tenant_id, mapping=draft(files)))
    assert [(f, q) for _, f, q in await parts_of(db_pool, mapping_id)] == [
        (files[0], 1), (files[1], 2)]
    assert await outbox(db_pool, tenant.tenant_id) == [
        ("tenant", "mapping.changed", {"sku": "VASE-01", "variant_id": ""})]

    with pytest.raises(Conflict, match="a mapping for SKU 'VASE-01' exists"):
        await command(tenant, catalog.create_mapping,
                      CreateMapping(tenant_id=tenant.tenant_id, mapping=draft(files)))
    assert len(await outbox(db_pool, tenant.tenant_id)) == 1  # the refusal rolled back
    variant = await command(tenant, catalog.create_mapping, CreateMapping(
        tenant_id=tenant.tenant_id, mapping=draft(files, variant_id="4711")))
    assert variant != mapping_id


async def test_foreign_files_and_kept_parts_are_invalid_by_field(
        tenant: TenantState, db_pool: Pool) -> None:
    mine = await print_file(db_pool, tenant.tenant_id)
    other = await create_tenant(db_pool, f"other-{uuid.uuid4().hex[:8]}")
    theirs = await print_file(db_pool, other)

    with pytest.raises(Invalid) as refused:
        await command(tenant, catalog.create_mapping,
                      CreateMapping(tenant_id=tenant.tenant_id, mapping=draft([mine, theirs])))
    assert Invalid.errors_of(str(refused.value)) == [
        ("parts.1.file_id", f"no print file {theirs}")]
    kept = draft([mine]).model_copy(update={"parts": [
        PartDraft(id=uuid.uuid4(), name="p", file_id=mine)]})
    with pytest.raises(Invalid, match="omit part ids on create"):
        await command(tenant, catalog.create_mapping,
                      CreateMapping(tenant_id=tenant.tenant_id, mapping=kept))
    assert await db_pool.fetchval("SELECT count(*) FROM product_mappings WHERE tenant_id = $1",
                                  tenant.tenant_id) == 0


async def test_replace_keeps_named_parts_and_refuses_strangers(
        tenant: TenantState, db_pool: Pool) -> None:
    a, b, c = [await print_file(db_pool, tenant.tenant_id) for _ in range(3)]
    mapping_id = await command(tenant, catalog.create_mapping,
                               CreateMapping(tenant_id=tenant.tenant_id, mapping=draft([a, b])))
    first, second = await parts_of(db_pool, mapping_id)
    change = MappingDraft(sku="VASE-02", name="Vase v2", parts=[
        PartDraft(id=second[0], name="kept", file_id=b, quantity=5),
        PartDraft(name="new", file_id=c)])
    await command(tenant, catalog.replace_mapping, ReplaceMapping(
        tenant_id=tenant.tenant_id, mapping_id=mapping_id, mapping=change))
    kept, new = await parts_of(db_pool, mapping_id)
    assert kept == (second[0], b, 5)
    assert new[1:] == (c, 1) and new[0] not in (first[0], second[0])
    assert [m[2]["sku"] for m in await outbox(db_pool, tenant.tenant_id)] == [
        "VASE-01", "VASE-02"]

    stranger = MappingDraft(sku="VASE-02", name="x", parts=[
        PartDraft(id=first[0], name="gone", file_id=a), PartDraft(id=first[0], name="x",
                                                                  file_id=a)])
    with pytest.raises(Invalid) as refused:
        await command(tenant, catalog.replace_mapping, ReplaceMapping(
            tenant_id=tenant.tenant_id, mapping_id=mapping_id, mapping=stranger))
    assert [name for name, _ in Invalid.errors_of(str(refused.value))] == [
        "parts.0.id", "parts.1.id", "parts"]
    missing = uuid.uuid4()
    with pytest.raises(NotFound, match=f"product mapping {missing} not found"):
        await command(tenant, catalog.replace_mapping, ReplaceMapping(
            tenant_id=tenant.tenant_id, mapping_id=missing, mapping=change))


async def test_delete_refuses_a_mapping_in_use_and_a_missing_one(
        tenant: TenantState, db_pool: Pool) -> None:
    file_id = await print_file(db_pool, tenant.tenant_id)
    used, unused = [await command(tenant, catalog.create_mapping, CreateMapping(
        tenant_id=tenant.tenant_id, mapping=draft([file_id], sku=sku))) for sku in ("A", "B")]
    order_id = uuid.uuid4()
    await db_pool.execute("INSERT INTO orders (id, tenant_id, shopify_order_id, name)"
                          " VALUES ($1, $2, 1001, '#1001')", order_id, tenant.tenant_id)
    await db_pool.execute(
        "INSERT INTO line_items (id, tenant_id, order_id, shopify_line_item_id, sku, quantity,"
        " mapping_id) VALUES ($1, $2, $3, 1, 'A', 1, $4)",
        uuid.uuid4(), tenant.tenant_id, order_id, used)

    with pytest.raises(Conflict, match="is used by orders"):
        await command(tenant, catalog.delete_mapping,
                      DeleteMapping(tenant_id=tenant.tenant_id, mapping_id=used))
    await command(tenant, catalog.delete_mapping,
                  DeleteMapping(tenant_id=tenant.tenant_id, mapping_id=unused))
    assert await parts_of(db_pool, unused) == []
    with pytest.raises(NotFound):
        await command(tenant, catalog.delete_mapping,
                      DeleteMapping(tenant_id=tenant.tenant_id, mapping_id=unused))


def test_invalid_keeps_its_fields_through_its_message() -> None:
    errors = [("parts.0.file_id", "no print file x"), ("parts", "a part id appears twice")]
    assert Invalid.errors_of(str(Invalid(errors))) == errors
