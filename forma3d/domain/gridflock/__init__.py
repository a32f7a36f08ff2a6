"""GridFlock rules: plate-set planning, SKUs, printer profiles, job states. No I/O."""


from forma3d.domain.gridflock.errors import (
    GridflockError,
    InvalidGridRequest,
    MeshCheckFailed,
    PlanError,
    Step,
    StepFailed,
    ToolMissing,
    ToolTimeout,
)
from forma3d.domain.gridflock.planner import (
    ConnectorStyle,
    PlanOptions,
    Plate,
    PlateSet,
    plan_plates,
)
from forma3d.domain.gridflock.profiles import PROFILES, PrinterProfile, get_profile
from forma3d.domain.gridflock.sku import (
    GridRequest,
    SizeLimits,
    canonical_sku,
    is_custom_sku,
    parse_line_item,
    parse_sku,
)

__all__ = [
    "PROFILES",
    "ConnectorStyle",
    "GridRequest",
    "GridflockError",
    "InvalidGridRequest",
    "MeshCheckFailed",
    "PlanError",
    "PlanOptions",
    "Plate",
    "PlateSet",
    "PrinterProfile",
    "SizeLimits",
    "Step",
    "StepFailed",
    "ToolMissing",
    "ToolTimeout",
    "canonical_sku",
    "get_profile",
    "is_custom_sku",
    "parse_line_item",
    "parse_sku",
    "plan_plates",
]
