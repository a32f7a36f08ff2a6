"""Messages to a printer's entity (key: our printer id)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from forma3d.messaging.message import Message


class PrinterMessage(Message):
    kind: ClassVar[str] = "printer"
    printer_id: uuid.UUID

    @property
    def key(self) -> str:
        return str(self.printer_id)


class GetPrinter(PrinterMessage):
    type: ClassVar[str] = "printer.get"


class PrinterChanges(BaseModel):
    """The fields an operator (or the fleet sync) may change; everything else is the system's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    model: str | None = None
    nozzle_diameter: Decimal | None = None
    state: str | None = None
    online: bool | None = None
    enabled: bool | None = None
    ready: bool | None = None
    tags: list[str] | None = None
    materials: list[dict[str, Any]] | None = None
    external_id: str | None = None
    auto_ready: bool | None = None
    farm_printer_id: int | None = None

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Unset fields stay unset on the wire, so `exclude_unset` still holds after a hop."""
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if k in self.model_fields_set}


class UpdatePrinter(PrinterMessage):
    """Only the fields set in `changes` are written (`exclude_unset`)."""

    type: ClassVar[str] = "printer.update"
    changes: PrinterChanges


class ObservePrinter(PrinterMessage):
    """A printers/Get row or a telemetry frame; latest wins while the printer is busy."""

    type: ClassVar[str] = "printer.observe"
    farm_printer_id: int
    state: dict[str, Any] = {}
    telemetry: dict[str, Any] = {}
    at: float = 0.0


class ResyncPrinter(PrinterMessage):
    type: ClassVar[str] = "printer.resync"


class FarmEvent(PrinterMessage):
    """A SimplyPrint webhook about this printer, forwarded by the tenant."""

    type: ClassVar[str] = "printer.farm_event"
    event: str
    job: dict[str, Any] = {}
    at: float | None = None


class ReconcilePrinter(PrinterMessage):
    """A job on this printer has had no update for a while: check it against the farm."""

    type: ClassVar[str] = "printer.reconcile"
    print_job_id: uuid.UUID | None = None


class DispatchPrinter(PrinterMessage):
    """Pull the best matching job if the printer is free."""

    type: ClassVar[str] = "printer.dispatch"


class ControlPrinter(PrinterMessage):
    type: ClassVar[str] = "printer.control"
    action: Literal["pause", "resume", "cancel"]
    comment: str | None = None


class ReleasePrinter(PrinterMessage):
    """The printer's job was ended from outside (an operator forced its status): if the printer
    still holds it, it is free again."""

    type: ClassVar[str] = "printer.release"
    print_job_id: uuid.UUID
