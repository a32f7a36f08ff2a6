"""The one backoff policy: exponential with full jitter, capped.

Used by the outbox dispatcher and the integration clients alike.
"""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, *, base: float = 0.2, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Seconds before retry `attempt` (1-based): uniform in [0, min(cap, base * 2^(n-1))]."""
    ceiling = min(cap, base * 2.0 ** min(max(0, attempt - 1), 62))
    return (rng or random).uniform(0, ceiling)
