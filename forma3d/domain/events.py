"""The one event catalog: every event's type, version and payload model, and the envelope.

Events are what entities tell each other and the outside world (event log, live dashboards,
outgoing webhooks). Payloads are validated when an event is made and when one is parsed, so a
malformed event fails where it is produced, not three services later. Types and fields follow
the Forma3D.Connect catalog, translated to snake_case; versions start at that catalog's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    field_validator,
    model_validator,
)

from forma3d.domain.gridflock.states import GridflockJobStatus, GridflockStep
from forma3d.domain.orders.states import LineItemStatus, OrderStatus
from forma3d.domain.printing.states import JobPurpose, PrintJobStatus
from forma3d.domain.shipping.states import ShipmentStatus

Id = Annotated[str, StringConstraints(min_length=1)]
Version = Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
DEFAULT_SOURCE = "forma3d"


class EventType(StrEnum):
    ORDER_CREATED = "order.created"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_READY_FOR_FULFILLMENT = "order.ready-for-fulfillment"
    PRINT_JOB_STATUS_CHANGED = "print-job.status-changed"
    PRINT_JOB_COMPLETED = "print-job.completed"
    PRINT_JOB_FAILED = "print-job.failed"
    PRINT_JOB_CANCELLED = "print-job.cancelled"
    SHIPMENT_CREATED = "shipment.created"
    SHIPMENT_STATUS_CHANGED = "shipment.status-changed"
    SHIPMENT_FULFILMENT_FAILED = "shipment.fulfilment-failed"
    SHIPMENT_TRACKING_UPDATED = "shipment.tracking-updated"
    SHIPMENT_DELIVERED = "shipment.delivered"
    SHIPMENT_SHOPIFY_UPDATED = "shipment.shopify-updated"
    GRIDFLOCK_MAPPING_READY = "gridflock.mapping-ready"
    GRIDFLOCK_PIPELINE_FAILED = "gridflock.pipeline-failed"
    STOCK_BATCH_COMPLETED = "stock.batch-completed"
    STOCK_REPLENISHMENT_SCHEDULED = "stock.replenishment-scheduled"
    STOCK_LEVEL_CHANGED = "stock.level-changed"
    STOCK_BATCH_STATUS_CHANGED = "stock.batch-status-changed"
    STOCK_SETTINGS_CHANGED = "stock.settings-changed"
    INTEGRATION_SHOPIFY_CHANGED = "integration.shopify-changed"
    INTEGRATION_SIMPLYPRINT_CHANGED = "integration.simplyprint-changed"
    INTEGRATION_SENDCLOUD_CHANGED = "integration.sendcloud-changed"
    TENANT_SETTINGS_CHANGED = "tenant.settings-changed"
    PRINTER_CHANGED = "printer.changed"
    PRINT_JOB_QUEUE_CHANGED = "print-job.queue-changed"
    PRINT_JOB_RECONCILED = "print-job.reconciled"
    PRINT_JOB_FORCE_STATUS = "print-job.force-status"
    GRIDFLOCK_JOB_STATUS_CHANGED = "gridflock.job-status-changed"
    ORDER_STATUS_CHANGED = "order.status-changed"
    LINE_ITEM_STATUS_CHANGED = "line-item.status-changed"
    ORDER_FULFILLED = "order.fulfilled"
    WEBHOOK_DEAD_LETTERED = "webhook.dead-lettered"
    WEBHOOK_RETRIED = "webhook.retried"
    GRIDFLOCK_PRESET_CHANGED = "gridflock.preset-changed"
    ORDER_PRINTING = "order.printing"
    ORDER_SHIPPED = "order.shipped"
    ORDER_DELIVERED = "order.delivered"
    WEBHOOK_SUBSCRIPTION_DISABLED = "webhook-subscription.disabled"
    ORDER_PAID = "order.paid"
    ORDER_HELD = "order.held"
    ORDER_RELEASED = "order.released"
    ORDER_EDITED = "order.edited"
    ORDER_REFUNDED = "order.refunded"
    LINE_ITEM_SKIPPED = "line-item.skipped"


class UnknownEventType(ValueError):
    def __init__(self, event_type: str) -> None:
        self.event_type = event_type
        known = ", ".join(sorted(_LATEST))
        super().__init__(f"unknown event type {event_type!r} (known: {known})")


class UnknownEventVersion(ValueError):
    def __init__(self, event_type: str, version: str) -> None:
        self.event_type = event_type
        self.version = version
        known = ", ".join(sorted(v for t, v in _REGISTRY if t == event_type))
        super().__init__(f"event type {event_type!r} has no version {version!r} (known: {known})")


class EventPayload(BaseModel):
    """Base of every payload: immutable, and unknown fields are an error, not silently lost."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class EventSpec:
    name: str
    version: str
    model: type[EventPayload]
    description: str


_REGISTRY: dict[tuple[str, str], EventSpec] = {}
_LATEST: dict[str, EventSpec] = {}
P = TypeVar("P", bound=type[EventPayload])


def _semver(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _register(event_type: EventType, version: str, description: str) -> Callable[[P], P]:
    def add(model: P) -> P:
        spec = EventSpec(event_type.value, version, model, description)
        if (spec.name, version) in _REGISTRY:
            raise ValueError(f"event {spec.name} {version} registered twice")
        _REGISTRY[(spec.name, version)] = spec
        latest = _LATEST.get(spec.name)
        if latest is None or _semver(version) > _semver(latest.version):
            _LATEST[spec.name] = spec
        return model

    return add


# --- orders ---------------------------------------------------------------------------------


class OrderLineItemData(EventPayload):
    line_item_id: Id
    sku: str
    quantity: int = Field(ge=1)
    shopify_line_item_id: str | None = None


@_register(
    EventType.ORDER_CREATED,
    "0.0.1",
    "An order was ingested from Shopify (webhook or backfill); triggers print-job creation.",
)
class OrderCreated(EventPayload):
    order_id: Id
    shopify_order_id: str | None = None  # None: a manual order
    order_number: str
    line_items: list[OrderLineItemData] = Field(min_length=1)


@_register(
    EventType.ORDER_CANCELLED,
    "0.0.1",
    "An order was cancelled; triggers cancelling its print jobs and its shipment.",
)
class OrderCancelled(EventPayload):
    order_id: Id
    shopify_order_id: str | None = None
    reason: str | None = None


@_register(
    EventType.ORDER_READY_FOR_FULFILLMENT,
    "0.0.1",
    "Every part of an order is printed or taken from stock; triggers shipment creation.",
)
class OrderReadyForFulfillment(EventPayload):
    order_id: Id
    shopify_order_id: str | None = None
    total_parts: int = Field(ge=0)
    completed_parts: int = Field(ge=0)


# --- printing -------------------------------------------------------------------------------


class PrintJobRef(EventPayload):
    """Fields every print-job event carries: which job, why it exists, where it runs."""

    print_job_id: Id
    purpose: JobPurpose = JobPurpose.ORDER
    order_id: str | None = None
    line_item_id: str | None = None
    stock_batch_id: str | None = None
    simplyprint_job_id: str | None = None
    printer_id: str | None = None

    @model_validator(mode="after")
    def _owner_matches_purpose(self) -> PrintJobRef:
        if self.purpose == JobPurpose.ORDER and not self.order_id:
            raise ValueError("an ORDER print job event needs order_id")
        if self.purpose == JobPurpose.STOCK and not self.stock_batch_id:
            raise ValueError("a STOCK print job event needs stock_batch_id")
        return self


@_register(
    EventType.PRINT_JOB_STATUS_CHANGED,
    "0.0.1",
    "A print job moved between statuses (for live dashboards).",
)
class PrintJobStatusChanged(PrintJobRef):
    previous_status: PrintJobStatus
    new_status: PrintJobStatus


@_register(
    EventType.PRINT_JOB_COMPLETED,
    "0.0.1",
    "A print job finished; the order (or stock batch) updates its progress.",
)
class PrintJobCompleted(PrintJobRef):
    pass


@_register(
    EventType.PRINT_JOB_FAILED,
    "0.0.1",
    "A print job failed on the printer; the line item becomes FAILED until the job is requeued.",
)
class PrintJobFailed(PrintJobRef):
    error_message: str


@_register(
    EventType.PRINT_JOB_CANCELLED,
    "0.0.1",
    "A print job was cancelled (usually by an "
    "order cancellation); the line item status is updated.",
)
class PrintJobCancelled(PrintJobRef):
    reason: str | None = None
    cancel_reason_code: int | None = None


# --- shipping -------------------------------------------------------------------------------


@_register(
    EventType.SHIPMENT_CREATED,
    "0.0.1",
    "A Sendcloud parcel and label exist; triggers the Shopify fulfillment with tracking.",
)
class ShipmentCreated(EventPayload):
    shipment_id: Id
    order_id: Id
    sendcloud_parcel_id: int | None = None
    sendcloud_shipment_id: str | None = None
    sendcloud_api: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    carrier: str | None = None
    label_url: str | None = None
    weight_kg: str | None = Field(default=None, pattern=r"^\d+\.\d{3}$")
    shipping_method: str | None = None
    service_point_id: str | None = None


@_register(
    EventType.SHIPMENT_STATUS_CHANGED,
    "0.0.1",
    "A shipment's status changed (Sendcloud webhook or reconciliation).",
)
class ShipmentStatusChanged(EventPayload):
    shipment_id: Id
    order_id: Id
    previous_status: ShipmentStatus
    new_status: ShipmentStatus
    sendcloud_status_id: int | None = None
    sendcloud_status_code: str | None = None
    sendcloud_status_message: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    reason: str | None = None
    action: str | None = None


@_register(
    EventType.SHIPMENT_FULFILMENT_FAILED,
    "0.0.1",
    "Shopify refused the fulfilment with tracking; the order waits for an operator's retry.",
)
class ShipmentFulfilmentFailed(EventPayload):
    shipment_id: Id
    order_id: Id
    reason: str
    http_status: int | None = None
    action: str


@_register(
    EventType.SHIPMENT_TRACKING_UPDATED,
    "0.0.1",
    "The carrier gave the shipment a new tracking number or URL (Sendcloud webhook or "
    "reconciliation); a fulfilled order's Shopify tracking follows.",
)
class ShipmentTrackingUpdated(EventPayload):
    shipment_id: Id
    order_id: Id
    previous_tracking_number: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


@_register(
    EventType.SHIPMENT_DELIVERED,
    "0.0.1",
    "The carrier delivered the parcel (to the door or collected at a service point).",
)
class ShipmentDelivered(EventPayload):
    shipment_id: Id
    order_id: Id
    tracking_number: str | None = None
    sendcloud_status_id: int | None = None
    sendcloud_status_code: str | None = None


@_register(
    EventType.SHIPMENT_SHOPIFY_UPDATED,
    "0.0.1",
    "Shopify's fulfilment got the shipment's new tracking or status (update_tracking, or a "
    "fulfillment event such as delivered).",
)
class ShipmentShopifyUpdated(EventPayload):
    shipment_id: Id
    order_id: Id
    shopify_fulfillment_id: str
    tracking_number: str | None = None
    shipment_status: str | None = None


# --- gridflock ------------------------------------------------------------------------------


@_register(
    EventType.GRIDFLOCK_MAPPING_READY,
    "0.0.1",
    "A product mapping for a GridFlock SKU "
    "exists (pipeline finished or mapping found); print jobs can be created.",
)
class GridflockMappingReady(EventPayload):
    sku: Id
    product_mapping_id: Id
    gridflock_job_id: str | None = None
    order_id: str | None = None
    line_item_id: str | None = None
    existing_mapping: bool = False


@_register(
    EventType.GRIDFLOCK_PIPELINE_FAILED,
    "0.0.1",
    "The GridFlock pipeline failed at one step (STL, slicing, upload or mapping).",
)
class GridflockPipelineFailed(EventPayload):
    sku: Id
    gridflock_job_id: Id
    failed_step: GridflockStep
    error_message: str
    order_id: str | None = None
    line_item_id: str | None = None


# --- inventory ------------------------------------------------------------------------------


@_register(
    EventType.STOCK_BATCH_COMPLETED,
    "0.0.1",
    "Every print job of a stock batch is "
    "settled; triggers the stock increment (PRODUCED ledger entry).",
)
class StockBatchCompleted(EventPayload):
    stock_batch_id: Id
    product_id: Id
    sku: str | None = None
    units_produced: int = Field(ge=0)
    completed_jobs: int = Field(ge=0)
    total_jobs: int = Field(ge=0)


@_register(
    EventType.STOCK_REPLENISHMENT_SCHEDULED,
    "0.0.2",
    "The replenishment scheduler made a stock print job; one event per job of the batch.",
)
class StockReplenishmentScheduled(EventPayload):
    stock_batch_id: Id
    print_job_id: Id
    product_id: Id
    part_id: Id
    copy_number: int = Field(ge=1)
    sku: str | None = None


@_register(
    EventType.STOCK_LEVEL_CHANGED,
    "0.0.1",
    "One stock ledger entry was recorded; carries the entry and the balance it leads to.",
)
class StockLevelChanged(EventPayload):
    product_mapping_id: Id
    ledger_entry_id: Id
    entry_type: str
    direction: str
    quantity: int = Field(ge=1)
    on_hand: int = Field(ge=0)
    reserved: int = Field(ge=0)
    available: int = Field(ge=0)
    reference_type: str
    reference_id: str | None = None
    reason: str | None = None


@_register(
    EventType.STOCK_BATCH_STATUS_CHANGED,
    "0.0.1",
    "A stock batch was created, completed or cancelled.",
)
class StockBatchStatusChanged(EventPayload):
    stock_batch_id: Id
    product_id: Id
    previous_status: str | None = None
    new_status: str
    units: int = Field(ge=1)
    reason: str | None = None


@_register(
    EventType.STOCK_SETTINGS_CHANGED,
    "0.0.1",
    "A product's stock settings (minimum, maximum, priority, batch size) or the tenant's "
    "stock management settings changed.",
)
class StockSettingsChanged(EventPayload):
    product_mapping_id: str | None = None
    before: dict[str, Any]
    after: dict[str, Any]


@_register(EventType.TENANT_SETTINGS_CHANGED, "0.0.1",
           "The tenant's settings changed (PATCH /api/v1/tenant/settings).")
class TenantSettingsChanged(EventPayload):
    before: dict[str, Any]
    after: dict[str, Any]
    changed_by: str | None = None


# --- integrations ---------------------------------------------------------------------------


class IntegrationChanged(EventPayload):
    """An integration was connected, reconfigured or disconnected; clients reload credentials."""

    connected: bool
    account: str | None = None
    changed_by: str | None = None


@_register(EventType.INTEGRATION_SHOPIFY_CHANGED, "0.0.1", "The Shopify connection changed.")
class IntegrationShopifyChanged(IntegrationChanged):
    pass


@_register(
    EventType.INTEGRATION_SIMPLYPRINT_CHANGED, "0.0.1", "The SimplyPrint connection changed."
)
class IntegrationSimplyPrintChanged(IntegrationChanged):
    pass


@_register(EventType.INTEGRATION_SENDCLOUD_CHANGED, "0.0.1", "The Sendcloud connection changed.")
class IntegrationSendcloudChanged(IntegrationChanged):
    pass


# --- fleet ----------------------------------------------------------------------------------


class Change(EventPayload):
    """What changed, as the values before and after (an audit trail, not a diff format)."""

    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)


@_register(EventType.PRINTER_CHANGED, "0.0.1",
           "A printer's state, readiness, name, tags or enablement changed.")
class PrinterChanged(Change):
    printer_id: Id
    source: str = "farm"


@_register(EventType.PRINT_JOB_QUEUE_CHANGED, "0.0.1",
           "An operator changed the smart queue: cancel, pause, resume, reorder, clear.")
class PrintJobQueueChanged(Change):
    action: str
    print_job_ids: list[str] = Field(default_factory=list)


@_register(EventType.PRINT_JOB_RECONCILED, "0.0.1",
           "Reconciliation corrected a job from the farm's state or job history.")
class PrintJobReconciled(Change):
    print_job_id: Id
    reason: str


@_register(EventType.PRINT_JOB_FORCE_STATUS, "0.0.1",
           "An admin forced a job's status (audited: who, why, before and after).")
class PrintJobForceStatus(Change):
    print_job_id: Id
    reason: str
    by: str


@_register(EventType.GRIDFLOCK_JOB_STATUS_CHANGED, "0.0.1",
           "A GridFlock job changed status: requested (no previous status), a step started, "
           "it completed, failed (with the step) or was retried.")
class GridflockJobStatusChanged(EventPayload):
    sku: Id
    gridflock_job_id: Id
    previous_status: GridflockJobStatus | None
    status: GridflockJobStatus
    failed_step: GridflockStep | None = None


# --- order and line-item lifecycles ---------------------------------------------------------


@_register(EventType.ORDER_STATUS_CHANGED, "0.0.1",
           "An order moved between statuses (every change, for audit and live dashboards).")
class OrderStatusChanged(EventPayload):
    order_id: Id
    previous_status: OrderStatus
    new_status: OrderStatus
    reason: str | None = None


@_register(EventType.LINE_ITEM_STATUS_CHANGED, "0.0.1",
           "A line item moved between statuses (mapping found or missing, printing, printed...).")
class LineItemStatusChanged(EventPayload):
    line_item_id: Id
    order_id: Id
    previous_status: LineItemStatus
    new_status: LineItemStatus
    reason: str | None = None


@_register(EventType.ORDER_FULFILLED, "0.0.1",
           "The Shopify order is fulfilled with the parcel's tracking number.")
class OrderFulfilled(EventPayload):
    order_id: Id
    shopify_order_id: str | None = None
    shopify_fulfillment_id: str | None = None
    tracking_number: str | None = None


# --- live orders: payment, holds, edits, refunds, skipped items ------------------------------


@_register(EventType.ORDER_PAID, "0.0.1",
           "Shopify reports an order paid (or authorized, where the tenant prints those); an "
           "order awaiting payment is released to print.")
class OrderPaid(EventPayload):
    order_id: Id
    financial_status: str
    released: bool = False


@_register(EventType.ORDER_HELD, "0.0.1",
           "An operator (or an edit after printing started) held an order, with the reason.")
class OrderHeld(EventPayload):
    order_id: Id
    reason: str
    by: str


@_register(EventType.ORDER_RELEASED, "0.0.1",
           "An operator released a held order; it is expanded again against today's mappings.")
class OrderReleased(EventPayload):
    order_id: Id
    by: str
    hold_reason: str | None = None


class LineItemEdit(EventPayload):
    shopify_line_item_id: str
    sku: str | None = None
    change: str  # added | removed | changed
    before: int = Field(ge=0)
    after: int = Field(ge=0)
    applied: bool


@_register(EventType.ORDER_EDITED, "0.0.1",
           "The shop edited an order's line items: unstarted jobs follow the edit; a change to a "
           "line item already printing is recorded and holds the order for an operator.")
class OrderEdited(EventPayload):
    order_id: Id
    changes: list[LineItemEdit] = Field(min_length=1)
    held: bool = False


class RefundedLine(EventPayload):
    shopify_line_item_id: str
    quantity: int = Field(ge=0)
    jobs_withdrawn: int = Field(ge=0)


@_register(EventType.ORDER_REFUNDED, "0.0.1",
           "A Shopify refund reached the order: refunded units' unstarted jobs are cancelled; a "
           "full refund cancels the order.")
class OrderRefunded(EventPayload):
    order_id: Id
    refund_id: str
    lines: list[RefundedLine] = Field(default_factory=list)
    full: bool


@_register(EventType.LINE_ITEM_SKIPPED, "0.0.1",
           "A line item is not a print (no shipping needed, or an ignored SKU): recorded, it "
           "never holds its order.")
class LineItemSkipped(EventPayload):
    line_item_id: Id
    order_id: Id
    sku: str | None = None
    reason: str


# --- webhook inbox --------------------------------------------------------------------------


@_register(EventType.WEBHOOK_DEAD_LETTERED, "0.0.1",
           "A stored webhook delivery could not be processed; it waits for an operator's retry.")
class WebhookDeadLettered(EventPayload):
    inbox_id: int
    source: str
    topic: str
    reason: str
    attempts: int = Field(ge=1)


@_register(EventType.WEBHOOK_RETRIED, "0.0.1",
           "An operator sent a dead-lettered webhook delivery back to processing.")
class WebhookRetried(EventPayload):
    inbox_id: int
    source: str
    topic: str


# --- order milestones for shops' automation (outgoing webhooks) ----------------------------


@_register(EventType.ORDER_PRINTING, "0.0.1",
           "The order's parts are being printed (the order entered PROCESSING).")
class OrderPrinting(EventPayload):
    order_id: Id
    shopify_order_id: str | None = None
    previous_status: OrderStatus


@_register(EventType.ORDER_SHIPPED, "0.0.1",
           "The carrier has the order's parcel (its first scan in transit, or delivered).")
class OrderShipped(EventPayload):
    order_id: Id
    shipment_id: Id
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


@_register(EventType.ORDER_DELIVERED, "0.0.1", "The order's parcel was delivered.")
class OrderDelivered(EventPayload):
    order_id: Id
    shipment_id: Id
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


# --- outgoing webhooks ----------------------------------------------------------------------


@_register(EventType.WEBHOOK_SUBSCRIPTION_DISABLED, "0.0.1",
           "An outgoing webhook subscription kept failing and was switched off.")
class WebhookSubscriptionDisabled(EventPayload):
    subscription_id: Id
    url: str
    reason: str
    consecutive_failures: int = Field(ge=0)


# --- envelope -------------------------------------------------------------------------------


def spec_for(event_type: str, version: str | None = None) -> EventSpec:
    """The registered spec of a type (latest version unless one is named)."""
    if event_type not in _LATEST:
        raise UnknownEventType(event_type)
    if version is None:
        return _LATEST[event_type]
    spec = _REGISTRY.get((event_type, version))
    if spec is None:
        raise UnknownEventVersion(event_type, version)
    return spec


def registered_events() -> list[EventSpec]:
    """Every (type, version) in the catalog, for docs and the outgoing-webhook settings."""
    return sorted(_REGISTRY.values(), key=lambda s: (s.name, _semver(s.version)))


class Event(BaseModel):
    """The common envelope; `data` is the payload model registered for (type, version)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    version: Version
    tenant_id: Id
    occurred_at: AwareDatetime
    correlation_id: Id
    source: Id = DEFAULT_SOURCE
    data: SerializeAsAny[EventPayload]

    @model_validator(mode="before")
    @classmethod
    def _resolve_payload(cls, raw: Any) -> Any:
        """Validate a raw `data` mapping against the model registered for its type/version."""
        if not isinstance(raw, Mapping):
            return raw
        event_type, version = raw.get("type"), raw.get("version")
        if not isinstance(event_type, str):
            return raw
        spec = spec_for(event_type, version if isinstance(version, str) else None)
        data = raw.get("data")
        if isinstance(data, Mapping):
            return {**raw, "version": spec.version, "data": spec.model.model_validate(data)}
        return {**raw, "version": spec.version}

    @model_validator(mode="after")
    def _payload_matches_type(self) -> Event:
        expected = spec_for(self.type, self.version).model
        if type(self.data) is not expected:
            raise ValueError(
                f"{self.type} {self.version} carries {expected.__name__}, "
                f"not {type(self.data).__name__}"
            )
        return self

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


def make_event(
    event_type: str,
    tenant_id: str,
    data: EventPayload | Mapping[str, Any],
    *,
    correlation_id: str | None = None,
    source: str = DEFAULT_SOURCE,
    occurred_at: datetime | None = None,
    version: str | None = None,
) -> Event:
    """A new event of the latest (or given) version, its data validated against the catalog.

    Without a correlation id the event starts a new chain: its own id becomes the correlation id.
    """
    spec = spec_for(event_type, version)
    payload = data if isinstance(data, EventPayload) else spec.model.model_validate(data)
    event_id = uuid4()
    return Event(
        event_id=event_id,
        type=spec.name,
        version=spec.version,
        tenant_id=tenant_id,
        occurred_at=occurred_at or datetime.now(UTC),
        correlation_id=correlation_id or str(event_id),
        source=source,
        data=payload,
    )


def parse_event(raw: Mapping[str, Any]) -> Event:
    """An event from its JSON form; UnknownEventType / UnknownEventVersion or a pydantic
    ValidationError (both ValueErrors) when it does not match the catalog."""
    if "type" not in raw or not isinstance(raw["type"], str):
        raise UnknownEventType(str(raw.get("type")))
    if not isinstance(raw.get("version"), str):
        raise ValueError(f"event {raw['type']!r}: no version")
    spec_for(raw["type"], raw["version"])
    return Event.model_validate(dict(raw))


@_register(EventType.GRIDFLOCK_PRESET_CHANGED, "0.0.1",
           "A GridFlock preset was created, replaced or deleted.")
class GridflockPresetChanged(EventPayload):
    name: Id
    action: Annotated[str, StringConstraints(pattern=r"^(created|replaced|deleted)$")]
