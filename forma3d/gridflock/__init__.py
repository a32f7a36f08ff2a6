"""GridFlock: custom Gridfinity baseplates, from a drawer size to sliced plates.

Pure parts (planner, SKU, preview) have no I/O; `stl`, `slicing` and `cache` run the external
tools (OpenSCAD, PrusaSlicer / BambuStudio) and keep their results by content hash.
"""

from forma3d.gridflock.errors import (
    GridflockError,
    InvalidGridRequest,
    MeshCheckFailed,
    PlanError,
    Step,
    StepFailed,
    ToolMissing,
    ToolTimeout,
)
from forma3d.gridflock.planner import (
    ConnectorStyle,
    PlanOptions,
    Plate,
    PlateSet,
    plan_plates,
)
from forma3d.gridflock.profiles import PROFILES, PrinterProfile, get_profile
from forma3d.gridflock.sku import (
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
