"""Stock: levels per product mapping (on hand, reserved, available and settings), the ledger
(and its CSV export), stock batches, manual adjustments and scrap, and the tenant's Stock
Management settings.

Reads go straight to PostgreSQL through the query language; every change is a typed command to
the tenant's entity, which owns stock, so it is serialised with the tenant's own stock work.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request
from starlette.responses import Response

from forma3d.domain.inventory.states import (
    BatchOrigin,
    Direction,
    LedgerType,
    ReferenceType,
    StockBatchStatus,
)
from forma3d.http.deps import ask, deps, parse_id, tenant_of, who
from forma3d.http.query import QuerySpec, fetch_page
from forma3d.http.routes.api import api
from forma3d.http.routes.listing import Row, fetch_one, list_routes, query_of
from forma3d.messaging.stock import (
    AdjustStock,
    CancelStockBatch,
    CreateStockBatch,
    Reason,
    ScrapStock,
    StockItemPatch,
    StockSettingsPatch,
    UpdateStockItem,
    UpdateStockSettings,
)
from forma3d.store.tenants import tenant_settings

TAG = "stock"


class StockLevelOut(BaseModel):
    mapping_id: uuid.UUID
    sku: str
    variant_id: str
    name: str
    on_hand: int
    reserved: int
    available: int
    in_production: int
    minimum: int
    maximum: int | None
    priority: int
    batch_size: int
    updated_at: datetime


class LedgerEntryOut(BaseModel):
    id: int
    mapping_id: uuid.UUID
    entry_type: LedgerType
    direction: Direction
    quantity: int
    on_hand_after: int
    reserved_after: int
    reference_type: ReferenceType
    reference_id: str | None
    order_id: uuid.UUID | None
    line_item_id: uuid.UUID | None
    stock_batch_id: uuid.UUID | None
    created_by: str | None
    reason: str | None
    created_at: datetime


class StockBatchOut(BaseModel):
    id: uuid.UUID
    mapping_id: uuid.UUID
    units: int
    status: StockBatchStatus
    origin: BatchOrigin
    units_produced: int | None
    reason: str | None
    created_by: str | None
    created_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None


class StockSettingsOut(BaseModel):
    stock_management_enabled: bool
    stock_quiet_start: str
    stock_quiet_end: str
    stock_time_zone: str
    stock_cancelled_parts: Literal["STOCK", "SCRAP"]


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(ge=-1_000_000, le=1_000_000, description="units added (+) or removed (-)")
    reason: Reason

    @field_validator("quantity")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment moves at least one unit")
        return value


class Scrap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quantity: int = Field(gt=0, le=1_000_000, description="units thrown away")
    reason: Reason


class NewBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mapping_id: uuid.UUID
    units: int = Field(gt=0, le=10_000)
    reason: str | None = Field(None, max_length=500)


class CancelBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = "cancelled by an operator"


LEVELS = QuerySpec.of(StockLevelOut, "stock_levels s", default_sort="sku:asc",
                      primary_key="mapping_id")
LEDGER = QuerySpec.of(LedgerEntryOut, "stock_ledger l", default_sort="id:desc")
LEDGER_EXPORT = QuerySpec.of(LedgerEntryOut, "stock_ledger l", default_sort="id:asc",
                             default_limit=10_000, max_limit=100_000)
BATCHES = QuerySpec.of(StockBatchOut, "stock_batches b", default_sort="created_at:desc")

list_routes("/stock", LEVELS, permission="stock.read",
            name="stock_levels", item=StockLevelOut, tag=TAG)
list_routes("/stock/ledger", LEDGER, permission="stock.read",
            name="stock_ledger", item=LedgerEntryOut, tag=TAG)
list_routes("/stock-batches", BATCHES, permission="stock.read",
            name="stock_batches", item=StockBatchOut, tag=TAG)


async def _level(request: Request, mapping_id: uuid.UUID) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, LEVELS, tenant_of(request), mapping_id, "stock of mapping")


@api.route("GET", "/stock/ledger.csv", "Export the stock ledger as CSV (same filters and sort "
           "as the ledger list; up to 100 000 entries per request)", tags=(TAG,),
           permission="stock.read")
async def export_ledger(request: Request) -> Response:
    query = query_of(request, LEDGER_EXPORT)
    async with deps(request).pool.acquire() as conn:
        page = await fetch_page(conn, LEDGER_EXPORT, query, tenant_of(request))
    out = io.StringIO()
    names = list(LedgerEntryOut.model_fields)
    writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore")
    writer.writeheader()
    for row in page.data:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in names})
    return Response(out.getvalue(), media_type="text/csv", headers={
        "content-disposition": 'attachment; filename="stock-ledger.csv"'})


@api.route("GET", "/stock/settings", "The tenant's Stock Management settings",
           response=StockSettingsOut, tags=(TAG,),
           permission="stock.read")
async def get_settings(request: Request) -> dict[str, Any]:
    settings = await tenant_settings(deps(request).pool, tenant_of(request))
    return {k: v for k, v in settings.model_dump().items() if k in StockSettingsOut.model_fields}


@api.route("PATCH", "/stock/settings", "Change the Stock Management settings (the flag, quiet "
           "hours and time zone, where parts printed for cancelled orders go)",
           body=StockSettingsPatch, response=StockSettingsOut, tags=(TAG,),
           permission="stock.settings")
async def patch_settings(request: Request, body: StockSettingsPatch) -> dict[str, Any]:
    answer: dict[str, Any] = await ask(request, UpdateStockSettings(
        tenant_id=tenant_of(request), patch=body))
    return answer


@api.route("GET", "/stock/{mapping_id}", "Stock of one product mapping", response=StockLevelOut,
           tags=(TAG,),
           permission="stock.read")
async def get_level(request: Request) -> Row:
    return await _level(request, parse_id(request.path_params["mapping_id"], "product mapping"))


@api.route("PATCH", "/stock/{mapping_id}", "Change a product's minimum, maximum, replenishment "
           "priority or batch size", body=StockItemPatch, response=StockLevelOut, tags=(TAG,),
           permission="stock.write")
async def patch_level(request: Request, body: StockItemPatch) -> Row:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    await ask(request, UpdateStockItem(tenant_id=tenant_of(request), mapping_id=mapping_id,
                                       patch=body, by=await who(request)))
    return await _level(request, mapping_id)


@api.route("POST", "/stock/{mapping_id}/adjustments", "Correct the count (signed quantity, "
           "with a reason)", body=Adjustment, response=StockLevelOut, status=201, tags=(TAG,),
           permission="stock.adjust")
async def adjust(request: Request, body: Adjustment) -> Row:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    await ask(request, AdjustStock(tenant_id=tenant_of(request), mapping_id=mapping_id,
                                   quantity=body.quantity, reason=body.reason,
                                   by=await who(request)))
    return await _level(request, mapping_id)


@api.route("POST", "/stock/{mapping_id}/scrap", "Throw units away (with a reason)",
           body=Scrap, response=StockLevelOut, status=201, tags=(TAG,),
           permission="stock.adjust")
async def scrap(request: Request, body: Scrap) -> Row:
    mapping_id = parse_id(request.path_params["mapping_id"], "product mapping")
    await ask(request, ScrapStock(tenant_id=tenant_of(request), mapping_id=mapping_id,
                                  quantity=body.quantity, reason=body.reason,
                                  by=await who(request)))
    return await _level(request, mapping_id)


async def _batch(request: Request, batch_id: uuid.UUID) -> Row:
    async with deps(request).pool.acquire() as conn:
        return await fetch_one(conn, BATCHES, tenant_of(request), batch_id, "stock batch")


@api.route("POST", "/stock-batches", "Print units of a product to stock now", body=NewBatch,
           response=StockBatchOut, status=201, tags=(TAG,),
           permission="stock.print")
async def create_batch(request: Request, body: NewBatch) -> Row:
    batch_id = await ask(request, CreateStockBatch(
        tenant_id=tenant_of(request), mapping_id=body.mapping_id, units=body.units,
        reason=body.reason, by=await who(request)))
    return await _batch(request, uuid.UUID(str(batch_id)))


@api.route("GET", "/stock-batches/{batch_id}", "One stock batch", response=StockBatchOut,
           tags=(TAG,),
           permission="stock.read")
async def get_batch(request: Request) -> Row:
    return await _batch(request, parse_id(request.path_params["batch_id"], "stock batch"))


@api.route("POST", "/stock-batches/{batch_id}/cancel", "Cancel a batch's unfinished jobs and "
           "the batch (units already printed go on the shelf)", body=CancelBatch,
           response=StockBatchOut, tags=(TAG,),
           permission="stock.print")
async def cancel_batch(request: Request, body: CancelBatch) -> Row:
    batch_id = parse_id(request.path_params["batch_id"], "stock batch")
    await ask(request, CancelStockBatch(tenant_id=tenant_of(request), stock_batch_id=batch_id,
                                        reason=body.reason))
    return await _batch(request, batch_id)
