"""The outgoing webhook sender: works the delivery table (forma3d.store.webhooks) as a loop of
the outbox dispatcher actor.

Each round claims the due chains (one per subscription and subject) and sends each chain in
order; a failed send waits with the one backoff and holds back the rest of its chain. A crash
anywhere means a resend (at least once): receivers deduplicate by `webhook-id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import httpx

from actors.loops import Heartbeat
from forma3d.config import Settings
from forma3d.db.pool import Pool, connect
from forma3d.integrations.outgoing_webhooks import send
from forma3d.messaging.live import NOTIFY_CHANNEL
from forma3d.retry import backoff_delay
from forma3d.store import webhooks
from forma3d.store.webhooks import WAKE_CHANNEL, Delivery, Target

log = logging.getLogger(__name__)
STALE_SECONDS = 120.0  # a round sends chains whose every attempt is bounded by the timeout


@dataclass(frozen=True)
class SenderConfig:
    chains: int = 200
    batch_size: int = 1000
    lease_seconds: float = 120.0
    timeout_seconds: float = 10.0
    concurrency: int = 32
    retry_base: float = 1.0
    retry_cap: float = 3600.0
    max_failures: int = 10
    max_failing: timedelta = timedelta(hours=24)
    allow_loopback: bool = False

    @classmethod
    def of(cls, settings: Settings) -> SenderConfig:
        return cls(timeout_seconds=settings.webhook_timeout_seconds,
                   retry_base=settings.webhook_retry_base_seconds,
                   retry_cap=settings.webhook_retry_cap_seconds,
                   max_failures=settings.webhook_max_failures,
                   max_failing=timedelta(hours=settings.webhook_max_failing_hours),
                   allow_loopback=settings.webhook_allow_loopback)


def body_of(delivery: Delivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":")).encode()


class WebhookSender:
    """The send loop without Ray, so tests can drive it directly."""

    def __init__(self, pool: Pool, config: SenderConfig | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self.pool = pool
        self.config = config or SenderConfig()
        self.client = client or httpx.AsyncClient(
            timeout=self.config.timeout_seconds, follow_redirects=False)
        self.limit = asyncio.Semaphore(self.config.concurrency)
        self.rng = random.Random()
        self.sent = 0
        self.failures = 0
        self.disabled = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def send_once(self) -> int:
        """Claim the due chains and send them; how many deliveries were claimed."""
        c = self.config
        claimed = await webhooks.claim(self.pool, c.chains, c.batch_size, c.lease_seconds)
        if not claimed:
            return 0
        found = await webhooks.targets(self.pool, list({d.subscription_id for d in claimed}),
                                       c.allow_loopback)
        chains: dict[tuple[uuid.UUID, str], list[Delivery]] = defaultdict(list)
        for delivery in claimed:
            chains[(delivery.subscription_id, delivery.subject)].append(delivery)
        await asyncio.gather(*(self._chain(chain, found.get(key[0]))
                               for key, chain in chains.items()))
        return len(claimed)

    async def _chain(self, chain: list[Delivery], target: Target | None) -> None:
        async with self.limit:
            for index, delivery in enumerate(chain):
                if target is None or not target.enabled:
                    await webhooks.release(self.pool, [d.id for d in chain[index:]])
                    return
                outcome = await send(self.client, target.url, target.policy, target.secret,
                                     str(delivery.event_id), body_of(delivery))
                if outcome.ok:
                    self.sent += 1
                    await webhooks.delivered(self.pool, delivery, outcome.status)
                    continue
                self.failures += 1
                delay = backoff_delay(delivery.attempts + 1, base=self.config.retry_base,
                                      cap=self.config.retry_cap, rng=self.rng)
                reason = await webhooks.failed(
                    self.pool, delivery, outcome.status, outcome.error or "failed", delay,
                    max_failures=self.config.max_failures, max_failing=self.config.max_failing)
                if reason is not None:
                    self.disabled += 1
                    log.warning("webhook subscription %s switched off: %s",
                                delivery.subscription_id, reason)
                # Keep the subject's order: the rest of the chain waits for this one.
                await webhooks.release(self.pool, [d.id for d in chain[index + 1:]])
                return

    async def run(self, database_url: str, heartbeat: Heartbeat | None = None,
                  poll_seconds: float = 1.0) -> None:
        """Send forever: woken by committed events (and redeliveries), and by a poll for
        retries coming due; beats `heartbeat` once per round."""
        beat = heartbeat or Heartbeat()
        wake = asyncio.Event()
        listener = await connect(database_url)
        for channel in (NOTIFY_CHANNEL, WAKE_CHANNEL):
            await listener.add_listener(channel, lambda *_: wake.set())
        try:
            while True:
                beat.beat()
                if listener.is_closed():
                    raise ConnectionError("the webhook listener's connection closed")
                wake.clear()
                try:
                    if await self.send_once():
                        continue
                except Exception:
                    log.exception("webhook sending failed; retrying")
                await beat.wait(wake, poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()
