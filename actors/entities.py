"""The entity kinds this deployment runs: one explicit list, read by every host."""

from __future__ import annotations

from typing import Any

from actors.entity import legacy_spec
from actors.order import OrderActor
from forma3d.handlers import fleet, gridflock, printer, tenant
from forma3d.handlers.registry import EntitySpec

ENTITIES: tuple[EntitySpec[Any], ...] = (
    legacy_spec(OrderActor), printer.ENTITY, tenant.ENTITY, fleet.ENTITY, gridflock.ENTITY)
