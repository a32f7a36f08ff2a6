"""Content-hash cache of generated files (STL, gcode), so the same plate is never made twice.

The key is a hash of everything that determines the bytes: plate parameters, printer/slicer
profile contents and tool versions. An entry is a file plus a JSON sidecar written last, both by
atomic rename, so a crash leaves either a whole entry or none. Producers for one key run once:
an asyncio lock inside the process and an advisory file lock across processes on the same disk
(concurrent orders for the same new size share one OpenSCAD run).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Producer = Callable[[Path], Awaitable[Mapping[str, Any]]]
"""Writes the artifact to the given path and returns metadata to keep beside it."""


def content_key(kind: str, parts: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of `parts`; `kind` keeps STL and gcode keys apart."""
    blob = json.dumps({"kind": kind, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def file_digest(*paths: Path) -> str:
    """Hash of file contents, for keys that must change when a profile or .scad is edited."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    path: Path
    meta: Mapping[str, Any]
    hit: bool


class ArtifactCache:
    """Files under `root/<kind>/<key[:2]>/<key><suffix>` with `<key>.json` metadata."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stats: Counter[str] = Counter()
        """`<kind>.hit` and `<kind>.miss` counts: a miss is one producer run (e.g. OpenSCAD)."""
        self._locks: dict[str, asyncio.Lock] = {}

    def path_for(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def lookup(self, kind: str, key: str, suffix: str) -> CacheEntry | None:
        path = self.path_for(kind, key, suffix)
        meta_path = path.with_suffix(".json")
        try:
            meta = json.loads(meta_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if not path.is_file():
            return None
        return CacheEntry(key, path, meta, hit=True)

    async def get_or_create(
        self, kind: str, key: str, suffix: str, produce: Producer
    ) -> CacheEntry:
        """The cached entry, or run `produce` once (per key, across tasks and processes)."""
        found = await asyncio.to_thread(self.lookup, kind, key, suffix)
        if found is not None:
            self.stats[f"{kind}.hit"] += 1
            return found
        lock = self._locks.setdefault(f"{kind}/{key}", asyncio.Lock())
        async with lock, self._file_lock(kind, key):
            found = await asyncio.to_thread(self.lookup, kind, key, suffix)
            if found is not None:
                self.stats[f"{kind}.hit"] += 1
                return found
            path = self.path_for(kind, key, suffix)
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            meta = dict(await produce(path))
            await asyncio.to_thread(_write_json_atomic, path.with_suffix(".json"), meta)
            self.stats[f"{kind}.miss"] += 1
            return CacheEntry(key, path, meta, hit=False)

    @contextlib.asynccontextmanager
    async def _file_lock(self, kind: str, key: str) -> AsyncIterator[None]:
        """flock without blocking a thread: poll with backoff so waiters cost no executor slot."""
        lock_dir = self.root / ".locks"
        await asyncio.to_thread(lock_dir.mkdir, parents=True, exist_ok=True)
        lock_path = lock_dir / f"{kind}-{key}.lock"
        fd = await asyncio.to_thread(os.open, lock_path, os.O_CREAT | os.O_RDWR)
        try:
            delay = 0.01
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_json_atomic(path: Path, meta: Mapping[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(meta, sort_keys=True, indent=1).encode())
