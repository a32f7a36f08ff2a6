"""The entity kinds this deployment runs: one explicit list, read by every host."""

from __future__ import annotations

from typing import Any

from actors.dispatch import FleetActor
from actors.entity import legacy_spec
from actors.order import OrderActor
from actors.printer import PrinterActor
from actors.tenant import TenantActor
from forma3d.handlers import gridflock
from forma3d.handlers.registry import EntitySpec

ENTITIES: tuple[EntitySpec[Any], ...] = (
    *(legacy_spec(cls) for cls in (OrderActor, PrinterActor, TenantActor, FleetActor)),
    gridflock.ENTITY,
)
