"""Operators' commands to a tenant's entity (key: the tenant id) about what the tenant owns:
its product mappings, the order of its print queue and its stock jobs."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from forma3d.messaging.tenant import TenantMessage
from forma3d.messaging.text import Text

# --- product mappings ----------------------------------------------------------------------------

Centimetres = Annotated[Decimal, Field(gt=0, lt=100000, decimal_places=2)]


class PartDraft(BaseModel):
    """One part of a mapping as an operator writes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: uuid.UUID | None = Field(None, description="an existing part of this mapping to keep "
                                 "(its print jobs keep their identity); omit for a new part")
    name: Text = Field(min_length=1, max_length=120)
    file_id: uuid.UUID
    quantity: int = Field(1, ge=1, le=1000)
    print_profile: Text | None = Field(None, max_length=120)
    grams: Decimal = Field(Decimal(0), ge=0, lt=10**8, decimal_places=2)
    required_tags: list[Text] = Field(default_factory=list, max_length=32)


class MappingDraft(BaseModel):
    """A product mapping as an operator writes it (the body of create and replace)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: Text = Field(min_length=1, max_length=255)
    variant_id: Text = Field("", max_length=64)
    name: Text = Field(min_length=1, max_length=255)
    packaging_grams: Decimal = Field(Decimal(0), ge=0, lt=10**8, decimal_places=2)
    packaging_cm: tuple[Centimetres, Centimetres, Centimetres] | None = Field(
        None, description="the product's box: length, width, height in cm (an order's parcel "
        "takes the largest box of its products, else the tenant's parcel_dimensions_cm)")
    parts: list[PartDraft] = Field(min_length=1, max_length=100)


class CreateMapping(TenantMessage):
    """Answers the new mapping's id; Conflict if the SKU (and variant) has one."""

    type: ClassVar[str] = "mapping.create"
    mapping: MappingDraft


class ReplaceMapping(TenantMessage):
    """Parts with an id are kept and updated, others added, missing ones removed."""

    type: ClassVar[str] = "mapping.replace"
    mapping_id: uuid.UUID
    mapping: MappingDraft


class DeleteMapping(TenantMessage):
    """Conflict while orders use the mapping."""

    type: ClassVar[str] = "mapping.delete"
    mapping_id: uuid.UUID


# --- the queue's order ---------------------------------------------------------------------------


class HoldJob(TenantMessage):
    """Pause (held) or resume a waiting job; for a printing job only the audit entry is
    written, and the answer names the printer the caller must ask to pause or resume."""

    type: ClassVar[str] = "queue.hold"
    print_job_id: uuid.UUID
    held: bool


class MoveJobToFront(TenantMessage):
    type: ClassVar[str] = "queue.move_to_front"
    print_job_id: uuid.UUID


class MoveJob(TenantMessage):
    """Move a waiting job to a 0-based place in the queue."""

    type: ClassVar[str] = "queue.move"
    print_job_id: uuid.UUID
    position: int = Field(ge=0)


class ReorderJobs(TenantMessage):
    """Put these waiting jobs first, in this order."""

    type: ClassVar[str] = "queue.reorder"
    print_job_ids: list[uuid.UUID] = Field(min_length=1)


class ClearFinished(TenantMessage):
    """Hide finished jobs from the queue view; answers how many."""

    type: ClassVar[str] = "queue.clear_finished"


# --- stock jobs (no order owns them) -------------------------------------------------------------


class CancelStockJob(TenantMessage):
    """Cancel a stock job for good; the answer names the printer to stop, if it was on one."""

    type: ClassVar[str] = "stock_job.cancel"
    print_job_id: uuid.UUID
    reason: str = "cancelled by an operator"


class ForceStockJobStatus(TenantMessage):
    """Admin override of a stock job's status (audited), like the order's ForceJobStatus."""

    type: ClassVar[str] = "stock_job.force_status"
    print_job_id: uuid.UUID
    status: str
    reason: str
    by: str
