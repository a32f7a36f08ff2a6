"""The entity kinds this deployment runs: one explicit list, read by every host."""

from __future__ import annotations

from typing import Any

from forma3d.handlers import fleet, gridflock, order, printer, tenant
from forma3d.handlers.registry import EntitySpec

ENTITIES: tuple[EntitySpec[Any], ...] = (
    order.ENTITY, printer.ENTITY, tenant.ENTITY, fleet.ENTITY, gridflock.ENTITY)
