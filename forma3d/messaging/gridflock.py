"""Messages to a GridFlock entity (key: tenant id and canonical SKU; one pipeline per size)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from forma3d.messaging.message import Message


class GridflockMessage(Message):
    kind: ClassVar[str] = "gridflock"
    sku: str

    @property
    def key(self) -> str:
        return f"{self.tenant_id}:{self.sku}"


class RunPipeline(GridflockMessage):
    """Start or resume the size's pipeline; refused retryably until the job has settled."""

    type: ClassVar[str] = "gridflock.run"
    job_id: uuid.UUID | None = None


class RetryPipeline(GridflockMessage):
    """An operator retries a FAILED pipeline."""

    type: ClassVar[str] = "gridflock.retry"
