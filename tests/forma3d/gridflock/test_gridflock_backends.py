"""Backend choice and the BambuStudio CLI contract, with a stand-in binary (BambuStudio is not
packaged for Debian): it checks the argv shape and writes a 3mf holding gcode, as the real one does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from forma3d.domain.gridflock.profiles import PROFILES
from forma3d.gridflock.slicing import BambuStudio, PrusaSlicer, choose_backend

FAKE_BAMBU = """
import sys, zipfile, os
args = sys.argv[1:]
if args == ["--help"]:
    print("BambuStudio-01.09.07.52 (stand-in)")
    sys.exit(0)
assert args[args.index("--slice") + 1] == "0"
machine, process = args[args.index("--load-settings") + 1].split(";")
assert machine.endswith("machine.json") and process.endswith("process.json")
assert args[args.index("--load-filaments") + 1].endswith("filament.json")
out = os.path.join(args[args.index("--outputdir") + 1], args[args.index("--export-3mf") + 1])
assert args[-1].endswith(".stl")
with zipfile.ZipFile(out, "w") as z:
    z.writestr("Metadata/plate_1.gcode",
               "; total estimated time: 1h 2m 3s\\n; total filament weight [g] : 12.5\\nG28\\n")
"""


@pytest.fixture
def fake_bambu(tmp_path: Path) -> Path:
    path = tmp_path / "bambu-studio"
    path.write_text(f"#!{sys.executable}\n{FAKE_BAMBU}")
    path.chmod(0o755)
    return path


def test_prusaslicer_without_bambustudio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAMBU_STUDIO_BIN", raising=False)
    assert isinstance(choose_backend(PROFILES["bambu-a1"]), PrusaSlicer)


def test_bambustudio_for_bambu_printers_when_installed(
    fake_bambu: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAMBU_STUDIO_BIN", str(fake_bambu))
    assert isinstance(choose_backend(PROFILES["bambu-a1"]), BambuStudio)
    assert isinstance(choose_backend(PROFILES["prusa-mk4"]), PrusaSlicer)


async def test_bambustudio_cli_contract(
    fake_bambu: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BAMBU_STUDIO_BIN", str(fake_bambu))
    stl = tmp_path / "plate.stl"
    stl.write_bytes(b"solid x\nendsolid x\n")
    out = tmp_path / "out" / "plate.gcode.3mf"
    out.parent.mkdir()
    result = await BambuStudio().slice(stl, PROFILES["bambu-a1"], out)
    assert result.stats.print_seconds == 3723 and result.stats.filament_g == 12.5
    assert result.slicer_version == "01.09.07.52"
    assert out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["plate.gcode.3mf"]
