"""Slicer backends behind one interface: PrusaSlicer (Debian; the tests use it) and BambuStudio.

BambuStudio is preferred for Bambu printers where `BAMBU_STUDIO_BIN` points at an installed CLI;
everything else is sliced with PrusaSlicer. Both read profiles from `slicer/profiles/`, and print
time and filament grams are read from the gcode they write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from forma3d.domain.gridflock.errors import Step, StepFailed
from forma3d.domain.gridflock.profiles import DEFAULT_SLICING, PrinterProfile, SliceSettings
from forma3d.domain.printing import gcode
from forma3d.gridflock.tools import SLICER_DIR, resolve_binary, run_tool

PROFILES_DIR = SLICER_DIR / "profiles"
_versions: dict[str, str] = {}
DEFAULT_TIMEOUT_S = 600.0

@dataclass(frozen=True, slots=True)
class GcodeStats:
    print_seconds: int
    filament_g: float


@dataclass(frozen=True, slots=True)
class SliceResult:
    """`output` is gcode (PrusaSlicer) or a gcode 3mf (BambuStudio), ready to upload."""

    output: Path
    stats: GcodeStats
    slicer: str
    slicer_version: str
    seconds: float


def parse_duration(text: str) -> int:
    """`1d 2h 3m 4s`, `2h 3m 4s`, `45m 10s`, `31s` -> seconds; ValueError otherwise."""
    seconds = gcode.parse_duration(text)
    if seconds is None:
        raise ValueError(f"not a slicer duration: {text!r}")
    return seconds


def parse_gcode_stats(text: str) -> GcodeStats:
    """Print time and grams from the slicer's comment lines (multi-extruder grams are summed)."""
    content = text.encode(errors="replace")
    seconds = gcode.estimated_seconds(content)
    grams = gcode.filament_grams(content)
    if seconds is None or grams is None:
        missing = "print time" if seconds is None else "filament grams"
        raise StepFailed(Step.SLICING, f"the gcode has no {missing} line")
    return GcodeStats(print_seconds=seconds, filament_g=float(grams))


def _read_tail(path: Path, size: int = 64 * 1024) -> str:
    """The stats sit in the last lines; big gcode files are not read whole."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - size))
        tail = f.read().decode(errors="replace")
    with path.open("rb") as f:
        head = f.read(size).decode(errors="replace")
    return head + "\n" + tail


class SlicerBackend(Protocol):
    name: str

    def available(self) -> bool: ...

    def supports(self, profile: PrinterProfile) -> bool: ...

    async def version(self) -> str: ...

    async def slice(
        self, stl: Path, profile: PrinterProfile, out_path: Path, *, timeout_s: float = ...,
        settings: SliceSettings = ...,
    ) -> SliceResult: ...


class PrusaSlicer:
    """`prusa-slicer --export-gcode --load printer.ini --load process.ini --load filament.ini`."""

    name = "prusaslicer"
    ENV = "PRUSA_SLICER_BIN"

    def __init__(self, profiles_dir: Path = PROFILES_DIR / "prusaslicer") -> None:
        self.profiles_dir = profiles_dir

    def binary(self) -> str:
        return resolve_binary(
            Step.SLICING,
            "PrusaSlicer",
            self.ENV,
            "prusa-slicer",
            "install Debian's prusa-slicer (scripts/bootstrap does) or set PRUSA_SLICER_BIN",
        )

    def available(self) -> bool:
        return shutil.which(os.environ.get(self.ENV) or "prusa-slicer") is not None

    def supports(self, profile: PrinterProfile) -> bool:
        return (self.profiles_dir / f"{profile.slicer_profile}.ini").is_file()

    async def version(self) -> str:
        """`2.5.0+UNKNOWN`, from the banner of `--help` (2.5 has no `--version`).

        Part of the gcode cache key; remembered per binary path for the life of the process.
        """
        binary = self.binary()
        if binary not in _versions:
            run = await run_tool(Step.SLICING, [binary, "--help"], timeout_s=60)
            m = re.search(r"PrusaSlicer-(\S+)", run.stdout + run.stderr)
            _versions[binary] = m.group(1) if m else "unknown"
        return _versions[binary]

    def ini_files(self, profile: PrinterProfile, filament: str = "pla") -> list[Path]:
        files = [
            self.profiles_dir / f"{profile.slicer_profile}.ini",
            self.profiles_dir / "process_gridflock.ini",
            self.profiles_dir / f"filament_{filament}.ini",
        ]
        for f in files:
            if not f.is_file():
                raise StepFailed(Step.SLICING, f"PrusaSlicer profile {f} is missing")
        return files

    async def slice(
        self,
        stl: Path,
        profile: PrinterProfile,
        out_path: Path,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        settings: SliceSettings = DEFAULT_SLICING,
    ) -> SliceResult:
        binary = self.binary()
        version = await self.version()
        inis = await asyncio.to_thread(self.ini_files, profile, settings.filament)
        tmp = await asyncio.to_thread(_temp_beside, out_path, ".gcode")
        try:
            argv = [binary, "--export-gcode"]
            for ini in inis:
                argv += ["--load", str(ini)]
            argv += self.overrides(profile, settings)
            argv += ["--loglevel", "1", "--output", str(tmp), str(stl)]
            run = await run_tool(Step.SLICING, argv, timeout_s=timeout_s)
            stats = await asyncio.to_thread(_stats_and_publish, tmp, out_path)
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
        return SliceResult(out_path, stats, self.name, version, run.seconds)


    @staticmethod
    def overrides(profile: PrinterProfile, settings: SliceSettings) -> list[str]:
        """Command-line settings over the loaded .ini files: the profile's bed (the size the
        planner split for) and the brim."""
        x, y = f"{profile.bed_x_mm:g}", f"{profile.bed_y_mm:g}"
        return ["--bed-shape", f"0x0,{x}x0,{x}x{y},0x{y}",
                "--brim-width", f"{settings.brim_mm:g}"]


class BambuStudio:
    """BambuStudio's CLI, where installed (`BAMBU_STUDIO_BIN`); not packaged for Debian.

    Profiles: `slicer/profiles/bambustudio/<slicer_profile>/{machine,process,filament}.json`,
    user presets that inherit Bambu's system presets. The output is a 3mf holding
    `Metadata/plate_1.gcode`, which is what the printer (or SimplyPrint) takes.
    """

    name = "bambustudio"
    ENV = "BAMBU_STUDIO_BIN"

    def __init__(self, profiles_dir: Path = PROFILES_DIR / "bambustudio") -> None:
        self.profiles_dir = profiles_dir

    def binary(self) -> str:
        return resolve_binary(
            Step.SLICING, "BambuStudio", self.ENV, "bambu-studio", "set BAMBU_STUDIO_BIN"
        )

    def available(self) -> bool:
        configured = os.environ.get(self.ENV)
        return bool(configured) and shutil.which(configured or "") is not None

    def supports(self, profile: PrinterProfile) -> bool:
        return (self.profiles_dir / profile.slicer_profile / "machine.json").is_file()

    async def version(self) -> str:
        binary = self.binary()
        if binary not in _versions:
            run = await run_tool(Step.SLICING, [binary, "--help"], timeout_s=60, check=False)
            text = run.stdout + run.stderr
            m = re.search(r"BambuStudio[- ]+(?:version\s*)?(\d[\w.+-]*)", text)
            _versions[binary] = m.group(1) if m else "unknown"
        return _versions[binary]

    async def slice(
        self,
        stl: Path,
        profile: PrinterProfile,
        out_path: Path,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        settings: SliceSettings = DEFAULT_SLICING,
    ) -> SliceResult:
        if settings != DEFAULT_SLICING:
            raise StepFailed(Step.SLICING, "the BambuStudio profiles take no brim or filament "
                             "choice; slice with PrusaSlicer")
        binary = self.binary()
        version = await self.version()
        d = self.profiles_dir / profile.slicer_profile
        out_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix=".bambu-", dir=out_path.parent)
        try:
            argv = [
                binary,
                "--slice", "0",
                "--load-settings", f"{d / 'machine.json'};{d / 'process.json'}",
                "--load-filaments", str(d / "filament.json"),
                "--export-3mf", "plate.3mf",
                "--outputdir", out_dir,
                str(stl),
            ]  # fmt: skip
            run = await run_tool(Step.SLICING, argv, timeout_s=timeout_s)
            stats = await asyncio.to_thread(_bambu_publish, Path(out_dir) / "plate.3mf", out_path)
        finally:
            await asyncio.to_thread(shutil.rmtree, out_dir, True)
        return SliceResult(out_path, stats, self.name, version, run.seconds)


def _temp_beside(out_path: Path, suffix: str) -> Path:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".slice-", suffix=suffix, dir=out_path.parent)
    os.close(fd)
    return Path(name)


def _stats_and_publish(tmp: Path, out_path: Path) -> GcodeStats:
    if not tmp.is_file() or tmp.stat().st_size == 0:
        raise StepFailed(Step.SLICING, "the slicer exited cleanly but wrote no gcode")
    stats = parse_gcode_stats(_read_tail(tmp))
    os.replace(tmp, out_path)
    return stats


def _bambu_publish(three_mf: Path, out_path: Path) -> GcodeStats:
    if not three_mf.is_file():
        raise StepFailed(Step.SLICING, "BambuStudio exited cleanly but wrote no 3mf")
    with zipfile.ZipFile(three_mf) as z:
        names = [n for n in z.namelist() if n.endswith(".gcode")]
        if not names:
            raise StepFailed(Step.SLICING, "the BambuStudio 3mf holds no gcode")
        stats = parse_gcode_stats(z.read(names[0]).decode(errors="replace"))
    with contextlib.suppress(FileNotFoundError):
        out_path.unlink()
    os.replace(three_mf, out_path)
    return stats


def choose_backend(profile: PrinterProfile,
                   settings: SliceSettings = DEFAULT_SLICING) -> SlicerBackend:
    """BambuStudio for printers it has profiles for, when installed and nothing but the
    defaults is asked (its presets carry no brim or filament choice); PrusaSlicer otherwise."""
    bambu = BambuStudio()
    if settings == DEFAULT_SLICING and bambu.available() and bambu.supports(profile):
        return bambu
    return PrusaSlicer()
