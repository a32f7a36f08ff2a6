"""The entity kinds this deployment runs: one explicit list, read by every host."""

from __future__ import annotations

from typing import Any, cast

from actors.dispatch import FleetActor
from actors.entity import legacy_spec
from actors.gridflock import GridflockActor
from actors.order import OrderActor
from actors.printer import PrinterActor
from actors.tenant import TenantActor
from forma3d.handlers import catalog, queue
from forma3d.handlers.registry import EntitySpec, Handlers

# Transitional: the legacy tenant class plus the catalog and queue handler modules (they read
# only `tenant_id` of the state, which the legacy class has too).
_legacy_tenant = legacy_spec(TenantActor)
TENANT: EntitySpec[Any] = EntitySpec(
    "tenant", _legacy_tenant.load,
    Handlers.merged(cast(Handlers[Any], _legacy_tenant.handlers),
                    cast(Handlers[Any], catalog.HANDLERS), cast(Handlers[Any], queue.HANDLERS)),
    _legacy_tenant.unload)

ENTITIES: tuple[EntitySpec[Any], ...] = (
    *(legacy_spec(cls) for cls in (OrderActor, PrinterActor)), TENANT,
    *(legacy_spec(cls) for cls in (FleetActor, GridflockActor)))
