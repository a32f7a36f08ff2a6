"""Rate limiters shaped like the real services' (leaky bucket, per-minute windows).

They run on real time, not simulated time: rate limits protect the service from the client's
actual request rate, which is what load tests measure.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class LeakyBucket:
    """Shopify REST's bucket: each request adds one, the bucket leaks ``leak_rate`` per second."""

    def __init__(
        self, capacity: int, leak_rate: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.leak_rate = leak_rate
        self._now = now
        self._level = 0.0
        self._last = now()

    def _leak(self) -> None:
        current = self._now()
        self._level = max(0.0, self._level - (current - self._last) * self.leak_rate)
        self._last = current

    def take(self) -> bool:
        """Adds one request if it fits; False means over the limit (429)."""
        self._leak()
        if self._level + 1 > self.capacity:
            return False
        self._level += 1
        return True

    @property
    def used(self) -> int:
        self._leak()
        return min(self.capacity, math.ceil(self._level - 1e-9))

    def reset(self) -> None:
        self._level = 0.0
        self._last = self._now()


class WindowLimit:
    """At most ``limit`` events within any ``window`` seconds (Sendcloud's per-minute limits)."""

    def __init__(
        self, limit: int, window: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._now = now
        self._events: deque[float] = deque()

    def _expire(self, current: float) -> None:
        while self._events and self._events[0] <= current - self.window:
            self._events.popleft()

    def allows(self) -> bool:
        self._expire(self._now())
        return len(self._events) < self.limit

    def record(self) -> None:
        self._events.append(self._now())

    def reset(self) -> None:
        self._events.clear()


class Limits:
    """All windows must allow a request; only then is it counted in each."""

    def __init__(self, *windows: WindowLimit) -> None:
        self.windows = list(windows)

    def take(self) -> bool:
        if not all(window.allows() for window in self.windows):
            return False
        for window in self.windows:
            window.record()
        return True

    def reset(self) -> None:
        for window in self.windows:
            window.reset()
