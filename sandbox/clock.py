"""Simulated time: a print of hours runs in seconds, and tests can jump ahead without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Simulated time running ``speedup`` times faster than real time, plus manual jumps.

    Everything in the sandbox that "takes time" (prints, parcel journeys) sleeps on this clock, so
    one speed-up setting compresses the whole simulation and ``advance`` can skip ahead at once.
    """

    def __init__(self, speedup: float = 1.0, start: datetime | None = None) -> None:
        if speedup <= 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        self.speedup = speedup
        self._start = start or datetime.now(UTC)
        self._real_start = time.monotonic()
        self._offset = 0.0
        self._changed: asyncio.Event | None = None

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._real_start) * self.speedup + self._offset

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.elapsed())

    def timestamp(self) -> float:
        """Simulated unix time in seconds."""
        return self.now().timestamp()

    def set_speedup(self, speedup: float) -> None:
        """Changes the rate from now on without jumping simulated time."""
        if speedup <= 0:
            raise ValueError(f"speedup must be > 0, got {speedup}")
        current = self.elapsed()
        self.speedup = speedup
        self._real_start = time.monotonic()
        self._offset = current
        self._wake()

    def advance(self, seconds: float) -> None:
        """Jumps simulated time forward; sleepers whose deadline passed wake up now."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
        self._wake()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def sleep(self, seconds: float) -> None:
        """Sleeps ``seconds`` of simulated time."""
        await self.sleep_until(self.elapsed() + seconds)

    async def sleep_until(self, deadline: float) -> None:
        """Sleeps until ``elapsed()`` reaches ``deadline``, waking early on ``advance``."""
        while True:
            remaining = deadline - self.elapsed()
            if remaining <= 0:
                return
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining / self.speedup)
