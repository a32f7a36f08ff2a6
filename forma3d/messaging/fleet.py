"""Messages to a tenant's fleet entity (key: the tenant id)."""

from __future__ import annotations

from typing import ClassVar

from forma3d.messaging.message import Message


class FleetMessage(Message):
    kind: ClassVar[str] = "fleet"

    @property
    def key(self) -> str:
        return str(self.tenant_id)


class SyncFleet(FleetMessage):
    """Register farm printers and feed every printer entity its printers/Get row."""

    type: ClassVar[str] = "fleet.sync"


class WakeFleet(FleetMessage):
    """Ask every idle, ready printer to pull a job (new work arrived)."""

    type: ClassVar[str] = "fleet.wake"


class FleetStatus(FleetMessage):
    type: ClassVar[str] = "fleet.status"


class HostObservations(FleetMessage):
    """This host's observation count and lag samples (taken, then reset): for benchmarks."""

    type: ClassVar[str] = "fleet.host_observations"
