"""A tenant connected to the in-process SimplyPrint simulator, for handler tests (the fixtures
that build it are in conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sandbox.farm import Farm, MaterialSpec, PrinterSpec
from sandbox.server import RunningSandboxes

FARM = [PrinterSpec(name="MK4 red", model="MK4", materials=[MaterialSpec(type="PLA", color="Red")]),
        PrinterSpec(name="X1C black", model="X1C",
                    materials=[MaterialSpec(type="PETG", color="Black")])]

# queue_job(required_tags, order=False) -> the id of a new QUEUED job
QueueJob = Callable[..., Awaitable[uuid.UUID]]


@dataclass
class SimplyPrint:
    tenant_id: uuid.UUID
    running: RunningSandboxes
    file_id: uuid.UUID  # an hour-long print file of the tenant

    @property
    def farm(self) -> Farm:
        return self.running.sandboxes.simplyprint.farm
