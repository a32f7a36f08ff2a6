"""External tools (OpenSCAD, slicers): finding the binary and running it as a killable subprocess.

Every failure becomes a typed `StepFailed` naming the pipeline step, so a job fails visibly at
GENERATING_STL or SLICING with a reason an operator can act on, never with a bare OSError.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from forma3d.domain.gridflock.errors import Step, StepFailed, ToolMissing, ToolTimeout

SLICER_DIR = Path(
    os.environ.get("FORMA3D_SLICER_DIR", Path(__file__).resolve().parents[2] / "slicer")
)
"""The repo's `slicer/` folder (OpenSCAD source, profiles); settable for non-editable installs."""


@dataclass(frozen=True, slots=True)
class ToolRun:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def resolve_binary(step: Step, name: str, env_var: str, default: str, hint: str) -> str:
    """The tool's path: `$env_var` if set, else `default` on PATH; `ToolMissing` otherwise."""
    wanted = os.environ.get(env_var) or default
    found = shutil.which(wanted)
    if found is None:
        raise ToolMissing(step, f"{name} ({wanted})", hint)
    return found


def _tail(text: str, lines: int = 12) -> str:
    kept = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


async def run_tool(
    step: Step,
    argv: list[str],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    check: bool = True,
) -> ToolRun:
    """Run `argv` in its own process group; kill the whole group on timeout or cancellation."""
    started = time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ToolMissing(step, argv[0], str(exc)) from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        _kill_group(proc)
        await proc.wait()
        raise ToolTimeout(step, f"{Path(argv[0]).name} ran longer than {timeout_s:g} s") from None
    except asyncio.CancelledError:
        _kill_group(proc)
        await proc.wait()
        raise
    run = ToolRun(
        argv=tuple(argv),
        returncode=proc.returncode if proc.returncode is not None else -1,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        seconds=time.perf_counter() - started,
    )
    if check and run.returncode != 0:
        how = (
            f"killed by signal {-run.returncode}"
            if run.returncode < 0
            else f"exit status {run.returncode}"
        )
        detail = _tail(run.stderr) or _tail(run.stdout)
        raise StepFailed(step, f"{Path(argv[0]).name} failed ({how}): {detail}")
    return run


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
