"""Messages to an order's entity (key: the order id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from forma3d.messaging.message import Message


class OrderMessage(Message):
    kind: ClassVar[str] = "order"
    order_id: uuid.UUID

    @property
    def key(self) -> str:
        return str(self.order_id)


class StartOrder(OrderMessage):
    """Resolve mappings, create and queue the print jobs, then put them on the farm."""

    type: ClassVar[str] = "order.start"


class SubmitJobs(OrderMessage):
    """Put queued jobs that are not on the farm yet into SimplyPrint's queue."""

    type: ClassVar[str] = "order.submit"


class JobStatusReport(OrderMessage):
    """What the farm says about one of the order's print jobs (webhook or reconciliation)."""

    type: ClassVar[str] = "job.status"
    print_job_id: uuid.UUID
    status: Literal["PRINTING", "COMPLETED", "FAILED", "CANCELLED"]
    at: datetime | None = None
    queue_item_id: int | None = None
    farm_job_uid: str | None = None
    farm_printer_id: int | None = None
    error: str | None = None


class RetryJob(OrderMessage):
    """An operator requeues a failed or cancelled print job."""

    type: ClassVar[str] = "job.retry"
    print_job_id: uuid.UUID


class ShipOrder(OrderMessage):
    """Parcel and label at Sendcloud, then the Shopify fulfilment with tracking."""

    type: ClassVar[str] = "order.ship"


class RetryShipment(OrderMessage):
    """An operator retries shipping an order whose shipment FAILED or whose Shopify fulfilment
    was refused; answered once the retry is recorded, the work itself follows as ShipOrder."""

    type: ClassVar[str] = "order.ship_retry"
    by: str = "operator"


class ShipmentStatusReport(OrderMessage):
    """A Sendcloud parcel status for the order's shipment (webhook or reconciliation): a v2
    status id or a v3 status code, and the parcel's tracking when it came with it."""

    type: ClassVar[str] = "shipment.status"
    status_id: int | None = None
    message: str | None = None
    at: datetime
    status_code: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None


class SyncShopifyTracking(OrderMessage):
    """Tell the order's Shopify fulfilment its shipment's new tracking number and status."""

    type: ClassVar[str] = "shipment.shopify_sync"


class CancelOrder(OrderMessage):
    type: ClassVar[str] = "order.cancel"
    reason: str | None = None


class CancelJob(OrderMessage):
    """An operator cancels one print job for good (its printer is stopped if it prints)."""

    type: ClassVar[str] = "job.cancel"
    print_job_id: uuid.UUID
    reason: str = "cancelled by an operator"


class ForceJobStatus(OrderMessage):
    """Admin override: set a job's status regardless of its transition table (audited)."""

    type: ClassVar[str] = "job.force_status"
    print_job_id: uuid.UUID
    status: str
    reason: str
    by: str


class ApplyShopifyOrder(OrderMessage):
    """A newer Shopify order payload (orders/updated, orders/paid) stored in the webhook inbox:
    contact and address, payment, and line items edited since."""

    type: ClassVar[str] = "order.shopify_changed"
    inbox_id: int


class ApplyRefund(OrderMessage):
    """A Shopify refund (refunds/create) stored in the webhook inbox."""

    type: ClassVar[str] = "order.refund"
    inbox_id: int


class HoldOrder(OrderMessage):
    """An operator holds the order with a reason: nothing more of it starts until released."""

    type: ClassVar[str] = "order.hold"
    reason: str
    by: str = "operator"


class ReleaseOrder(OrderMessage):
    """An operator releases a held order; it is expanded again against today's mappings."""

    type: ClassVar[str] = "order.release"
    by: str = "operator"


class WithdrawJobs(OrderMessage):
    """Take jobs an edit or refund cancelled off SimplyPrint's queue (they were committed
    CANCELLED already; this only removes their queue items)."""

    type: ClassVar[str] = "order.withdraw_jobs"
    print_job_ids: list[uuid.UUID]
