"""The one retry policy shared by all API clients: capped exponential backoff with full jitter.

Pure functions plus one loop; sleep and RNG are injected so tests never wait.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from forma3d.integrations.errors import IntegrationError
from forma3d.retry import backoff_delay

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """When to give up: after `max_attempts` tries or when waiting more would exceed the budget.

    Backoff before retry n (1-based) is uniform in [0, min(max_delay, base_delay * 2**(n-1))]
    ("full jitter"), so many clients failing together do not retry in lockstep. A server's
    Retry-After overrides the backoff (it knows best), but still counts against the budget.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_delay: float = 60.0

    def backoff_ceiling(self, retry_number: int) -> float:
        exponent = min(retry_number - 1, 62)  # keep 2**n finite for silly inputs
        return float(min(self.max_delay, self.base_delay * math.pow(2, exponent)))

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        return backoff_delay(retry_number, base=self.base_delay, cap=self.max_delay, rng=rng)

    def delay_for(self, retry_number: int, error: IntegrationError, rng: random.Random) -> float:
        if error.retry_after is not None:
            return max(0.0, error.retry_after)
        return self.backoff(retry_number, rng)


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds ("2", Shopify's "2.0") or an HTTP date. None if absent
    or unreadable; past dates give 0."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def call_limit_delay(
    value: str | None, *, leak_rate: float | None = None, headroom: float = 0.8
) -> float:
    """Pause before the next Shopify call so the leaky bucket stays below `headroom` full.

    `X-Shopify-Shop-Api-Call-Limit: 36/40` with the Standard leak of 2 req/s and headroom 0.8
    (target 32) gives (36 - 32) / 2 = 2 s. Without a known `leak_rate` it is bucket size / 20
    (Standard 40 -> 2/s, Plus 400 -> 20/s). Unreadable headers give 0: never block on a guess.
    """
    if not value or "/" not in value:
        return 0.0
    used_text, _, size_text = value.partition("/")
    try:
        used, size = int(used_text.strip()), int(size_text.strip())
    except ValueError:
        return 0.0
    rate = leak_rate if leak_rate is not None else size / 20
    if size <= 0 or rate <= 0:
        return 0.0
    target = math.floor(size * headroom)
    return max(0, used - target) / rate


async def retry_call(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
    should_retry: Callable[[IntegrationError], bool] | None = None,
) -> T:
    """Run `attempt` until it succeeds, raises a non-retryable error, or the policy gives up.

    The raised error is the last one seen, with `attempts` set to how many tries were made.
    """
    rng = rng or random.Random()
    decide = should_retry or (lambda err: err.retryable)
    slept = 0.0
    number = 0
    while True:
        number += 1
        try:
            return await attempt()
        except IntegrationError as err:
            err.attempts = number
            if not decide(err) or number >= policy.max_attempts:
                raise
            delay = policy.delay_for(number, err, rng)
            if slept + delay > policy.max_total_delay:
                log.warning("giving up on %s after %d attempts: budget exhausted", err, number)
                raise
            log.info("retrying after %s in %.2fs (attempt %d)", err, delay, number)
            await sleep(delay)
            slept += delay
