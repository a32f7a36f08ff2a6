"""The entity kinds this deployment runs: one explicit list, read by every host."""

from __future__ import annotations

from typing import Any

from actors.dispatch import FleetActor
from actors.entity import legacy_spec
from actors.gridflock import GridflockActor
from actors.printer import PrinterActor
from actors.tenant import TenantActor
from forma3d.handlers import order
from forma3d.handlers.registry import EntitySpec

ENTITIES: tuple[EntitySpec[Any], ...] = (
    order.ENTITY,
    *(legacy_spec(cls) for cls in (PrinterActor, TenantActor, FleetActor, GridflockActor)),
)
