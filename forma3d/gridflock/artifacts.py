"""A plate's STL and gcode, each made at most once: the geometry engine and the slicer behind the
cache.

This is what the slicer pool calls per unique plate. Keys cover everything that shapes the
bytes, so editing the .scad, a profile, or upgrading a tool makes new entries instead of serving
stale ones.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from forma3d.domain.gridflock.planner import Plate
from forma3d.domain.gridflock.profiles import DEFAULT_SLICING, PrinterProfile, SliceSettings
from forma3d.domain.tenants import GridflockEngine
from forma3d.gridflock.cache import ArtifactCache, content_key, file_digest
from forma3d.gridflock.slicing import GcodeStats, PrusaSlicer, SlicerBackend, choose_backend
from forma3d.gridflock.stl import (
    GEOMETRY_FILE,
    SCAD_FILE,
    MeshReport,
    generate_plate,
    manifold_version,
    openscad_version,
    scad_parameters,
)


@dataclass(frozen=True, slots=True)
class PlateStl:
    path: Path
    key: str
    mesh: MeshReport
    seconds: float
    """The engine's time when it was generated (also on a later cache hit)."""
    cached: bool
    engine: GridflockEngine


@dataclass(frozen=True, slots=True)
class PlateGcode:
    path: Path
    key: str
    stats: GcodeStats
    slicer: str
    slicer_version: str
    seconds: float
    cached: bool


class PlateArtifacts:
    """Makes and caches plate files. One instance per worker process; it is cheap to build."""

    def __init__(self, cache: ArtifactCache, backend: SlicerBackend | None = None,
                 engine: GridflockEngine = "manifold") -> None:
        self.cache = cache
        self.backend = backend
        self.engine: GridflockEngine = engine
        self._openscad: str | None = None

    async def stl_key(self, plate: Plate) -> str:
        """Each engine has its own keys: their meshes are equal within tolerance, not in bytes."""
        if self.engine == "manifold":
            source = await asyncio.to_thread(file_digest, GEOMETRY_FILE)
            return content_key("stl", {"params": scad_parameters(plate), "engine": "manifold",
                                       "geometry": source, "manifold3d": manifold_version()})
        if self._openscad is None:
            self._openscad = await openscad_version()
        scad = await asyncio.to_thread(file_digest, SCAD_FILE)
        return content_key(
            "stl",
            {"params": scad_parameters(plate), "scad": scad, "openscad": self._openscad},
        )

    async def stl(self, plate: Plate) -> PlateStl:
        key = await self.stl_key(plate)

        async def produce(path: Path) -> dict[str, object]:
            r = await generate_plate(plate, path, self.engine)
            m = r.mesh
            return {
                "triangles": m.triangles,
                "size_mm": list(m.size_mm),
                "volume_mm3": m.volume_mm3,
                "seconds": round(r.seconds, 4),
                "plate_key": plate.key,
                "engine": self.engine,
            }

        e = await self.cache.get_or_create("stl", key, ".stl", produce)
        size = e.meta["size_mm"]
        mesh = MeshReport(
            int(e.meta["triangles"]), (size[0], size[1], size[2]), e.meta["volume_mm3"]
        )
        return PlateStl(e.path, key, mesh, float(e.meta["seconds"]), e.hit, self.engine)

    def backend_for(self, profile: PrinterProfile,
                    settings: SliceSettings = DEFAULT_SLICING) -> SlicerBackend:
        return self.backend or choose_backend(profile, settings)

    async def gcode(self, plate: Plate, profile: PrinterProfile,
                    settings: SliceSettings = DEFAULT_SLICING) -> PlateGcode:
        """Slice the plate for `profile` with `settings` (generating its STL first if needed).

        The key holds everything that changes the gcode: the STL, the slicer and its version,
        the profile files, the bed size and the slice settings (brim, filament)."""
        stl = await self.stl(plate)
        backend = self.backend_for(profile, settings)
        version = await backend.version()
        profile_files = await asyncio.to_thread(_profile_files, backend, profile,
                                                settings.filament)
        parts: dict[str, object] = {
            "stl": stl.key,
            "slicer": backend.name,
            "slicer_version": version,
            "profile": profile.slicer_profile,
            "profile_files": profile_files,
            "bed_mm": [profile.bed_x_mm, profile.bed_y_mm],
            "brim_mm": settings.brim_mm,
            "filament": settings.filament,
        }
        key = content_key("gcode", parts)
        suffix = ".gcode" if backend.name == "prusaslicer" else ".gcode.3mf"

        async def produce(path: Path) -> dict[str, object]:
            r = await backend.slice(stl.path, profile, path, settings=settings)
            return {
                "print_seconds": r.stats.print_seconds,
                "filament_g": r.stats.filament_g,
                "slicer": r.slicer,
                "slicer_version": r.slicer_version,
                "seconds": round(r.seconds, 3),
            }

        e = await self.cache.get_or_create("gcode", key, suffix, produce)
        stats = GcodeStats(int(e.meta["print_seconds"]), float(e.meta["filament_g"]))
        return PlateGcode(
            e.path,
            key,
            stats,
            str(e.meta["slicer"]),
            str(e.meta["slicer_version"]),
            float(e.meta["seconds"]),
            e.hit,
        )


def _profile_files(backend: SlicerBackend, profile: PrinterProfile, filament: str) -> str:
    if isinstance(backend, PrusaSlicer):
        return file_digest(*backend.ini_files(profile, filament))
    d = getattr(backend, "profiles_dir", None)
    if isinstance(d, Path):
        folder = d / profile.slicer_profile
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        return file_digest(*files)
    return ""
