"""Rate limits in Redis (the `limits` library's moving windows), shared by every replica.

Two buckets per API key and per signed-in user, like Printago's: a burst (per second) and a
sustained rate (per minute), from the tenant's settings (TenantSettings.api_requests_per_*);
one per client address, before authentication (so key guessing and sign-in attempts are limited
too); and one per tenant for inbound provider webhooks, which are never limited per key. Over a
limit: 429 problem+json with Retry-After and RateLimit-Limit/-Remaining/-Reset.

The webhook ceiling is taken in leases: a replica takes a block of permits from Redis in one
call and spends it within the second the block counts in Redis, so a burst costs Redis one call
per block instead of one per webhook (on the 2-core machine the call per webhook was a tenth of
the replica's time). A block left unspent is lost, which makes the shared ceiling stricter by at
most one block per replica, never looser.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from forma3d.domain.tenants import TenantSettings
from forma3d.http.principal import Principal
from forma3d.http.problems import Problem

LEASE_SHARE = 64  # a lease is at most this fraction of the ceiling per second
LEASE_SECONDS = 0.9  # spent within the second its permits count in Redis (with a margin)


@dataclass
class _Lease:
    left: int
    until: float  # time.monotonic()


@dataclass
class AddressLimits:
    """Per client address, whoever it is (not per tenant: it is not known yet)."""

    per_second: int = 200
    per_minute: int = 6000


class RateLimits:
    """The limiter of one process; the counts are in Redis, shared."""

    def __init__(self, redis: Any, address: AddressLimits | None = None,
                 enabled: bool = True) -> None:
        self._redis = redis
        self.enabled = enabled
        self._limiter: MovingWindowRateLimiter | None = None
        self.address = address or AddressLimits()
        self._leases: dict[str, _Lease] = {}
        self._taking: dict[str, asyncio.Lock] = {}  # one lease taken at a time per bucket

    def _get(self) -> MovingWindowRateLimiter:
        if self._limiter is None:
            # The app's own connection pool: the URI only names the client kind.
            storage = RedisStorage("async+redis://", implementation="redispy",
                                   key_prefix="forma3d:rate",
                                   connection_pool=self._redis.connection_pool)
            self._limiter = MovingWindowRateLimiter(storage)
        return self._limiter

    async def _hit(self, request: Request | None, buckets: list[tuple[RateLimitItem, str]],
                   what: str, status: int = 429) -> None:
        if not self.enabled:
            return
        limiter = self._get()
        shown: tuple[RateLimitItem, int, float] | None = None
        for item, who in buckets:
            allowed = await limiter.hit(item, who)
            if allowed and request is None:
                # No headers to show: the window's figures (a second round trip, and a scan
                # of the window's entries in Redis) are read only for a refusal's Retry-After.
                continue
            stats = await limiter.get_window_stats(item, who)
            reset = max(0.0, stats.reset_time - time.time())
            if not allowed:
                retry = max(1, math.ceil(reset))
                raise Problem(status, f"too many requests {what}: at most {item.amount} per "
                              f"{item.GRANULARITY.name}; retry after {retry} s",
                              headers={"Retry-After": str(retry),
                                       **_headers(item, 0, reset)})
            if shown is None or stats.remaining / item.amount < shown[1] / shown[0].amount:
                shown = (item, stats.remaining, reset)
        if request is not None and shown is not None:
            state = request.scope.setdefault("state", {})
            state["rate_headers"] = [(k.lower().encode(), v.encode())
                                     for k, v in _headers(*shown).items()]

    async def check_address(self, request: Request, address: str) -> None:
        await self._hit(None, [
            (RateLimitItemPerSecond(self.address.per_second), f"address:{address}"),
            (RateLimitItemPerMinute(self.address.per_minute), f"address:{address}")],
            "from this address")

    async def check_principal(self, request: Request, principal: Principal,
                              settings: TenantSettings | None = None) -> None:
        if principal.kind == "platform":
            return
        limits = settings or TenantSettings()
        who = f"{principal.kind}:{principal.id}"
        await self._hit(request, [
            (RateLimitItemPerSecond(limits.api_requests_per_second), who),
            (RateLimitItemPerMinute(limits.api_requests_per_minute), who)],
            f"for this {'API key' if principal.kind == 'key' else 'user'}")

    async def check_webhooks(self, tenant: str, settings: TenantSettings) -> None:
        """The tenant's ceiling on inbound provider webhooks (they retry after a 429), from
        this replica's lease while it lasts."""
        if not self.enabled:
            return
        who = f"webhooks:{tenant}"
        if self._spend(who):
            return
        # The requests that find the lease spent wait for one of them to take the next.
        async with self._taking.setdefault(who, asyncio.Lock()):
            if self._spend(who):
                return
            item = RateLimitItemPerSecond(settings.webhook_requests_per_second)
            block, now = item.amount // LEASE_SHARE, time.monotonic()
            if block > 1 and await self._get().hit(item, who, cost=block):
                self._leases[who] = _Lease(block - 1, now + LEASE_SECONDS)
                return
            # Near the ceiling (or a small one): one permit at a time, 429 past it.
            await self._hit(None, [(item, who)], "of webhooks for this tenant")

    def _spend(self, who: str) -> bool:
        lease = self._leases.get(who)
        if lease is None or lease.left <= 0 or lease.until <= time.monotonic():
            return False
        lease.left -= 1
        return True


def _headers(item: RateLimitItem, remaining: int, reset: float) -> dict[str, str]:
    return {"RateLimit-Limit": str(item.amount), "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(max(0, math.ceil(reset)))}
