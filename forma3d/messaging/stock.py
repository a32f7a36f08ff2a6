"""Messages to a tenant's entity about its stock (key: the tenant id): operator commands on
stock levels, settings and batches, the replenishment tick, and a stock job's settling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from forma3d.messaging.tenant import TenantMessage

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class StockItemPatch(BaseModel):
    """A product's stock settings to change: omitted (or null) fields stay as they are;
    `clear_maximum` removes the maximum (then replenishment fills up to the minimum)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    minimum: int | None = Field(None, ge=0, le=1_000_000)
    maximum: int | None = Field(None, ge=0, le=1_000_000)
    clear_maximum: bool = False
    priority: int | None = Field(None, ge=-1000, le=1000, description="higher goes first")
    batch_size: int | None = Field(None, ge=1, le=10_000)

    @model_validator(mode="after")
    def _not_empty(self) -> StockItemPatch:
        if self.clear_maximum and self.maximum is not None:
            raise ValueError("give a maximum or clear it, not both")
        if not self.clear_maximum and not self.changes():
            raise ValueError("name at least one of minimum, maximum, priority, batch_size")
        return self

    def changes(self) -> dict[str, int | None]:
        wanted: dict[str, int | None] = {
            k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum),
                              ("priority", self.priority), ("batch_size", self.batch_size))
            if v is not None}
        if self.clear_maximum:
            wanted["maximum"] = None
        return wanted


class StockSettingsPatch(BaseModel):
    """The tenant's Stock Management settings to change (omitted or null fields stay)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stock_management_enabled: bool | None = None
    stock_quiet_start: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    stock_quiet_end: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    stock_time_zone: str | None = Field(None, min_length=1, max_length=64)
    stock_cancelled_parts: Literal["STOCK", "SCRAP"] | None = None


class AdjustStock(TenantMessage):
    """An operator's count correction: a signed quantity with a reason (ADJUSTED entry)."""

    type: ClassVar[str] = "stock.adjust"
    mapping_id: uuid.UUID
    quantity: int = Field(ge=-1_000_000, le=1_000_000)
    reason: Reason
    by: str | None = None

    @field_validator("quantity")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment moves at least one unit (positive adds, negative "
                             "removes)")
        return value


class ScrapStock(TenantMessage):
    """Units thrown away, with a reason (SCRAPPED entry)."""

    type: ClassVar[str] = "stock.scrap"
    mapping_id: uuid.UUID
    quantity: int = Field(gt=0, le=1_000_000)
    reason: Reason
    by: str | None = None


class UpdateStockItem(TenantMessage):
    type: ClassVar[str] = "stock.update_item"
    mapping_id: uuid.UUID
    patch: StockItemPatch
    by: str | None = None


class UpdateStockSettings(TenantMessage):
    type: ClassVar[str] = "stock.update_settings"
    patch: StockSettingsPatch


class CreateStockBatch(TenantMessage):
    """An operator asks for `units` of a product printed to stock now."""

    type: ClassVar[str] = "stock.create_batch"
    mapping_id: uuid.UUID
    units: int = Field(gt=0, le=10_000)
    reason: str | None = None
    by: str | None = None


class CancelStockBatch(TenantMessage):
    type: ClassVar[str] = "stock.cancel_batch"
    stock_batch_id: uuid.UUID
    reason: Reason = "cancelled by an operator"


class ReplenishStock(TenantMessage):
    """The scheduler's periodic tick: in quiet hours, batch products below their minimum.
    `at` stands for now (the simulated clock in tests)."""

    type: ClassVar[str] = "stock.replenish"
    at: datetime | None = None


class StockJobReport(TenantMessage):
    """A stock job's status on the farm. With `status` (farm webhook, reconciliation) the tenant
    writes it; without (the printer entity wrote it already) it only follows up: a failure is
    retried, a finished batch completes."""

    type: ClassVar[str] = "stock.job_report"
    print_job_id: uuid.UUID
    status: Literal["PRINTING", "COMPLETED", "FAILED", "CANCELLED"] | None = None
    at: datetime | None = None
    queue_item_id: int | None = None
    farm_job_uid: str | None = None
    farm_printer_id: int | None = None
    error: str | None = None


class SubmitStockJobs(TenantMessage):
    """Put queued stock jobs that are not on the farm yet into SimplyPrint's queue (only when
    the tenant dispatches through SimplyPrint's own queue; smart dispatch pulls them)."""

    type: ClassVar[str] = "stock.submit_jobs"
