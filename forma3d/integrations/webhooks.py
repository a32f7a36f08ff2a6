"""The SimplyPrint and Sendcloud webhook payloads, as the ingress checks them and the tenant
entity processes them (one definition, so nothing acknowledged fails in processing).

Only what processing reads is typed; the rest of a delivery stays in its raw body. Everything a
payload forwards (a SimplyPrint job object goes to the printer entity as a message) must also be
storable as jsonb: clean text and finite numbers throughout.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from forma3d.domain.bounded import CleanText, EpochMillis, EpochSeconds, Id64, Int32, json_safe


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _Document(_Payload):
    """A whole webhook body: checked once, all of it, for what jsonb cannot hold."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return json_safe(value) if isinstance(value, dict) else value


class FarmRef(_Payload):
    id: Id64


class FarmJobRef(_Payload):
    uid: CleanText | None = None
    printer_id: Id64 | None = None
    printer: FarmRef | None = None
    failedReason: CleanText | None = None  # SimplyPrint's spelling

    @field_validator("uid", mode="before")
    @classmethod
    def _uid_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def farm_printer_id(self) -> int | None:
        return self.printer_id or (self.printer.id if self.printer else None)


class FarmWebhookData(_Payload):
    job: FarmJobRef | None = None
    queue_item: FarmRef | None = None
    printer: FarmRef | None = None


class FarmWebhookPayload(_Document):
    """A SimplyPrint webhook: `event`, `timestamp` (Unix seconds) and a `data` object."""

    event: CleanText = Field(min_length=1)
    timestamp: EpochSeconds
    data: FarmWebhookData = Field(default_factory=FarmWebhookData)

    @field_validator("data", mode="before")
    @classmethod
    def _no_data(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def farm_printer_id(self) -> int | None:
        job = self.data.job
        return (job.farm_printer_id if job else None) or (
            self.data.printer.id if self.data.printer else None)

    @property
    def subject(self) -> str | None:
        """The job's uid or the queue item's id: what the delivery is about."""
        if self.data.job and self.data.job.uid:
            return self.data.job.uid
        return str(self.data.queue_item.id) if self.data.queue_item else None

    @property
    def job_dict(self) -> dict[str, Any]:
        return self.data.job.model_dump(mode="json", exclude_none=True) if self.data.job else {}

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp or datetime.now(UTC).timestamp(), UTC)


class SendcloudStatus(_Payload):
    id: Int32 | None = None
    message: CleanText | None = None


class SendcloudParcelRef(_Payload):
    id: Id64 | None = None
    status: SendcloudStatus | None = None
    tracking_number: CleanText | None = None
    tracking_url: CleanText | None = None


class SendcloudWebhookPayload(_Document):
    """A Sendcloud webhook: `action`, `timestamp` (Unix milliseconds) and maybe a `parcel`."""

    action: CleanText = Field(min_length=1)
    timestamp: EpochMillis | None = None
    parcel: SendcloudParcelRef | None = None

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp((self.timestamp or 0) / 1000, UTC)
