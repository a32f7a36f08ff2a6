"""Background loops that heal or say they are sick: the one mechanism every singleton actor uses.

A `Loop` is a named coroutine that runs forever and beats its `Heartbeat` once per round (and
while it waits, through `Heartbeat.sleep`/`Heartbeat.wait`). A `Loops` group, owned by an actor,
starts its loops idempotently (`ensure_started`, called from the actor's constructor, so a
restarted actor resumes by itself, and again from every status call), and runs a watchdog:

- a loop whose task ended (it raised, or returned although loops never return) is logged with
  its error and started again after a backoff;
- a loop whose last beat is older than its `stale_after` is reported `stuck` (logged once per
  episode); it is not cancelled, since a slow external call may still finish.

`Loops.report()` is what the actors' `status` returns and what `/health/ready` judges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from forma3d.retry import backoff_delay

log = logging.getLogger(__name__)

State = Literal["up", "starting", "stuck", "down"]
BEAT_SECONDS = 1.0  # how often Heartbeat.sleep/wait beat while a loop waits


class Heartbeat:
    """A loop's last sign of life: `beat()` after each round; the waits beat while they wait,
    since a loop waiting for its next round is idle, not stuck."""

    def __init__(self) -> None:
        self.last: float | None = None  # time.monotonic() of the last beat
        self.last_wall: float | None = None  # time.time() of the same beat, for reports
        self.beats = 0

    def beat(self) -> None:
        self.last = time.monotonic()
        self.last_wall = time.time()
        self.beats += 1

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds`, beating at least every BEAT_SECONDS."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.beat()
            await asyncio.sleep(min(left, BEAT_SECONDS))
        self.beat()

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait for `event` at most `timeout` seconds, beating meanwhile; whether it was set."""
        deadline = time.monotonic() + timeout
        while not event.is_set() and (left := deadline - time.monotonic()) > 0:
            self.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(left, BEAT_SECONDS))
        self.beat()
        return event.is_set()


Body = Callable[[Heartbeat], Awaitable[None]]
T = TypeVar("T")


class Lazy(Generic[T]):
    """What an actor's loops share (a pool, a router), made on first use rather than in the
    constructor: a database that is down then fails a loop, which the watchdog retries, instead
    of failing the actor's construction. Made once; made again only if making it failed."""

    def __init__(self, make: Callable[[], Awaitable[T]]) -> None:
        self.make = make
        self.value: T | None = None
        self.lock = asyncio.Lock()

    async def get(self) -> T:
        async with self.lock:
            if self.value is None:
                self.value = await self.make()
            return self.value


@dataclass
class Loop:
    """One named background loop and how long it may go without a beat before it is stuck."""

    name: str
    body: Body
    stale_after: float
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    task: asyncio.Task[None] | None = None
    started_at: float | None = None  # monotonic
    restart_at: float | None = None  # monotonic; set while a died loop waits for its restart
    restarts: int = 0
    failures: int = 0  # consecutive deaths without a beat in between, for the backoff
    last_error: str | None = None
    stuck_logged: bool = False

    def state(self, now: float) -> State:
        if self.task is None or self.task.done():
            return "down"
        last = self.heartbeat.last
        if last is None or (self.started_at is not None and last < self.started_at):
            # No beat since (re)start: starting, until it has taken longer than a beat may.
            started = self.started_at if self.started_at is not None else now
            return "starting" if now - started <= self.stale_after else "stuck"
        return "stuck" if now - last > self.stale_after else "up"

    def report(self, now: float) -> dict[str, Any]:
        last, wall = self.heartbeat.last, self.heartbeat.last_wall
        return {
            "state": self.state(now),
            "last_tick": (datetime.fromtimestamp(wall, UTC).isoformat()
                          if wall is not None else None),
            "age_s": round(now - last, 3) if last is not None else None,
            "stale_after_s": self.stale_after,
            "ticks": self.heartbeat.beats,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


class Loops:
    """An actor's loops and their watchdog. Start with `ensure_started()` from a running event
    loop: Ray runs an async actor's constructor on the actor's event loop, so the constructor
    can start them (and does, again, after every restart); calling it again is harmless."""

    def __init__(self, owner: str, loops: Sequence[Loop], *, check_seconds: float = 1.0,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0) -> None:
        self.owner = owner
        self.loops = {loop.name: loop for loop in loops}
        self.check_seconds = check_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.watchdog: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        """Start every loop that never ran and the watchdog if it is not running."""
        for loop in self.loops.values():
            if loop.task is None:
                self._start(loop)
        if self.watchdog is None or self.watchdog.done():
            self.watchdog = asyncio.create_task(self._watch(), name=f"{self.owner}:watchdog")

    def _start(self, loop: Loop) -> None:
        loop.started_at = time.monotonic()
        loop.restart_at = None
        loop.stuck_logged = False
        loop.task = asyncio.create_task(self._run(loop), name=f"{self.owner}:{loop.name}")

    async def _run(self, loop: Loop) -> None:
        await loop.body(loop.heartbeat)
        raise RuntimeError("the loop returned")  # loops run forever: returning is a death

    async def _watch(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self.check_seconds)

    def check(self) -> None:
        """One watchdog round: restart loops that died (after their backoff), log stuck ones."""
        now = time.monotonic()
        for loop in self.loops.values():
            task = loop.task
            if task is not None and task.done() and loop.restart_at is None:
                self._died(loop, task, now)
            if loop.restart_at is not None and now >= loop.restart_at:
                loop.restarts += 1
                log.warning("%s: restarting loop %s (restart %d)", self.owner, loop.name,
                            loop.restarts)
                self._start(loop)
                continue
            state = loop.state(now)
            if state == "stuck" and not loop.stuck_logged:
                loop.stuck_logged = True
                log.error("%s: loop %s is stuck: no tick for more than %g s", self.owner,
                          loop.name, loop.stale_after)
            elif state == "up":
                if loop.stuck_logged:
                    log.warning("%s: loop %s ticks again", self.owner, loop.name)
                loop.stuck_logged = False
                loop.failures = 0

    def _died(self, loop: Loop, task: asyncio.Task[None], now: float) -> None:
        error = None if task.cancelled() else task.exception()
        loop.last_error = (f"{type(error).__name__}: {error}"[:300] if error is not None
                           else "cancelled")
        loop.failures += 1
        delay = backoff_delay(loop.failures, base=self.backoff_base, cap=self.backoff_cap)
        loop.restart_at = now + delay
        log.error("%s: loop %s died (%s); restarting in %.1f s", self.owner, loop.name,
                  loop.last_error, delay, exc_info=error)

    def report(self) -> dict[str, dict[str, Any]]:
        now = time.monotonic()
        return {name: loop.report(now) for name, loop in self.loops.items()}

    def healthy(self) -> bool:
        now = time.monotonic()
        return all(loop.state(now) == "up" for loop in self.loops.values())

    async def stop(self) -> None:
        """Cancel the watchdog and the loops (tests, and actors shutting down cleanly)."""
        tasks = [t for t in [self.watchdog, *(lp.task for lp in self.loops.values())]
                 if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
