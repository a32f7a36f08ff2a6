"""Who owns a server or a run in a data directory, so nothing outlives the run that started it.

An owner file (JSON: pid and the process's start time) names the process that started a server
(or `forma3d up` itself). A later start reads it: an owner still running is left alone (a
`forma3d migrate` beside a running `forma3d up` attaches as a guest and stops nothing); an owner
that is gone (killed with `kill -9`, say) left its server behind, and the new start takes it over
or stops it, and says so. The start time guards against a recycled pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessRef:
    """One process as recorded: its pid and start time (seconds since the epoch)."""

    pid: int
    started: float

    @classmethod
    def of(cls, process: psutil.Process) -> ProcessRef:
        return cls(process.pid, process.create_time())

    @classmethod
    def me(cls) -> ProcessRef:
        return cls.of(psutil.Process())

    def process(self) -> psutil.Process | None:
        """The live process this names, or None when it is gone (or the pid was reused)."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > 1.0:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except psutil.Error:
            return None

    def alive(self) -> bool:
        return self.process() is not None


def read_owner(path: Path) -> ProcessRef | None:
    try:
        data = json.loads(path.read_text())
        return ProcessRef(int(data["pid"]), float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_owner(path: Path, owner: ProcessRef, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"pid": owner.pid, "started": owner.started, **extra}))
    tmp.replace(path)


def read_extra(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def terminate(processes: Iterable[psutil.Process], grace: float = 10.0) -> list[str]:
    """SIGTERM, then SIGKILL whatever is still running after `grace` seconds; the names of the
    processes that were running."""
    running = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            name = process.name()
            process.send_signal(signal.SIGTERM)
            running.append((process, name))
    if not running:
        return []
    _, alive = psutil.wait_procs([p for p, _ in running], timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)
    return [name for _, name in running]


def descendants() -> list[psutil.Process]:
    """Every process this one started, directly or not, that is still running."""
    with contextlib.suppress(psutil.Error):
        return [p for p in psutil.Process().children(recursive=True)
                if p.status() != psutil.STATUS_ZOMBIE]
    return []


def session_members(leader: ProcessRef) -> list[psutil.Process]:
    """Processes still in the process group of a (gone) process, started after it: what it left
    behind that re-parented itself away from it (Ray's agents keep their group)."""
    found = []
    for process in psutil.process_iter(["pid", "create_time"]):
        try:
            if (process.pid != os.getpid() and os.getpgid(process.pid) == leader.pid
                    and process.info["create_time"] >= leader.started - 1.0
                    and process.status() != psutil.STATUS_ZOMBIE):
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def wait_gone(processes: Iterable[psutil.Process], timeout: float) -> bool:
    """Whether every process ended within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending and time.monotonic() < deadline:
        pending = [p for p in pending if p.is_running()
                   and p.status() != psutil.STATUS_ZOMBIE]
        if pending:
            time.sleep(0.1)
    return not pending
