"""`scripts/up` as a user runs it from the checkout, stopped the two ways a user stops it.

`kill -9` of a first start leaves its embedded PostgreSQL and Redis (and some of Ray's agents)
behind; a second start says it took them over, comes up, and a Ctrl-C (SIGINT to the terminal's
process group) then stops every process either start made: none whose command line names the
checkout, the data directory or the run's Ray directory remains, nor any that carries the run's
Ray directory in its environment (Ray's workers retitle themselves `ray::...`)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.test_demo import free_port_block

pytestmark = pytest.mark.timeout(1500)

CHECKOUT = Path(__file__).resolve().parents[2]
READY_SECONDS = 480  # Ray starts (retried) on a loaded 2-core machine
STOP_SECONDS = 180
READY_LINE = "forma3d is up"  # what `up` prints once everything answers


class Up:
    """One `scripts/up` in its own session (as a terminal would run it), with its own data
    directory, Ray directory and ports."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.port = int(env["FORMA3D_HTTP_PORT"])
        self.started = time.time()
        with log.open("wb") as out:
            # No dashboard: fewer processes to start on a loaded machine (Ray gives its node
            # 30 s to register); Ray still starts its per-node agents, which the stop must end.
            self.process = subprocess.Popen([str(CHECKOUT / "scripts" / "up"), "--no-dashboard"],
                                            cwd=CHECKOUT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"scripts/up exited ({self.process.returncode}) before it "
                                     f"was ready:\n{self.output()[-4000:]}")
            # Its own word first: after a `kill -9`, what the killed run left behind may still
            # answer on the port until this start has taken it over.
            try:
                if READY_LINE in self.output() and httpx.get(
                        f"http://127.0.0.1:{self.port}/health/ready", timeout=5
                ).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(f"not ready in {READY_SECONDS}s:\n{self.output()[-4000:]}")

    def processes(self) -> list[psutil.Process]:
        return [self.process_itself(), *psutil.Process(self.process.pid).children(recursive=True)]

    def process_itself(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        return self.process.wait(STOP_SECONDS)

    def kill_9(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def end(self) -> None:
        """After a failed assertion: stop the run (Ctrl-C, then SIGKILL to its group)."""
        if self.process.poll() is None:
            try:
                self.ctrl_c()
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def leftovers(since: float, marks: list[str], env_mark: str) -> list[str]:
    """Processes started since `since` (not this test's own) that belong to the runs."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found = []
    for process in psutil.process_iter(["pid", "create_time", "cmdline", "status"]):
        try:
            if (process.pid in mine or process.info["create_time"] < since - 1
                    or process.info["status"] == psutil.STATUS_ZOMBIE):
                continue
            cmdline = " ".join(process.info["cmdline"] or [])
            environ = process.environ()
            if (any(mark in cmdline for mark in marks)
                    or environ.get("RAY_TMPDIR") == env_mark):
                found.append(f"{process.pid} {cmdline[:160]}")
        except psutil.Error:
            continue
    return found


@pytest.fixture
def run_dirs() -> Iterator[tuple[Path, Path]]:
    """Short paths: Ray and HAProxy put Unix sockets under them."""
    data = Path(tempfile.mkdtemp(prefix="f3up-"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="f3ray-"))
    yield data, ray_tmp
    for path in (data, ray_tmp):
        subprocess.run(["rm", "-rf", str(path)], check=False)


def test_kill_9_then_a_clean_start_and_a_ctrl_c_that_stops_everything(
        run_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    data, ray_tmp = run_dirs
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "RAY_ADDRESS", "FORMA3D_ENTITY_HOSTS")}
    env.update({"FORMA3D_DATA_DIR": str(data), "RAY_TMPDIR": str(ray_tmp),
                "FORMA3D_HTTP_PORT": str(free_port_block())})
    began = time.time()

    first = Up(env, tmp_path / "first.log")
    try:
        first.wait_ready()
        first_processes = first.processes()
    finally:
        first.kill_9()
    postgres_left = [p for p in psutil.process_iter(["cmdline"])
                     if str(data / "pgdata") in " ".join(p.info["cmdline"] or [])]
    assert postgres_left, "the killed run should have left its PostgreSQL running"

    second = Up(env, tmp_path / "second.log")
    try:
        second.wait_ready()
        said = second.output()
        print(said[-3000:])
        assert "took over embedded PostgreSQL" in said
        # Redis ran as a child of the killed run: stopped with its other leftovers (or, had it
        # been left outside the record, taken over); either way the start says so.
        assert ("took over embedded Redis" in said
                or ("left by a run that did not stop" in said and "redis-server" in said))
        second_processes = second.processes()
        assert len(second_processes) > 5  # Ray's processes and workers, Redis
        assert second.ctrl_c() == 0, second.output()[-4000:]
    finally:
        second.end()
    assert "forma3d: stopped" in second.output()
    left = leftovers(began, [str(CHECKOUT), str(data), str(ray_tmp),
                             f"forma3d-haproxy-{second.port}"], str(ray_tmp))
    assert left == [], "\n".join(left)
    still = [p for p in [*first_processes, *second_processes]
             if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert still == []
    assert not (data / "up.json").exists()
