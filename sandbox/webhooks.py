"""Outgoing webhook delivery for the simulators: signed bytes, retries, deliberate loss, a log.

Real services lose, retry and reorder webhooks; the orchestrator must survive that through
reconciliation. The loss rate makes missing deliveries happen on purpose (seeded, so a failing
run can be replayed), and the log keeps the exact bytes and headers of every delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from sandbox.clock import SimClock

Outcome = Literal["pending", "delivered", "dropped", "failed"]


@dataclass
class Delivery:
    """One webhook delivery to one target, with every attempt's result."""

    id: int
    service: str
    topic: str
    target: str
    body: bytes
    headers: dict[str, str]
    created_at: float
    outcome: Outcome = "pending"
    attempts: int = 0
    status_codes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    replay_of: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe view for the control endpoints (body decoded as text)."""
        return {
            "id": self.id,
            "service": self.service,
            "topic": self.topic,
            "target": self.target,
            "body": self.body.decode("utf-8", errors="replace"),
            "headers": dict(self.headers),
            "created_at": self.created_at,
            "outcome": self.outcome,
            "attempts": self.attempts,
            "status_codes": list(self.status_codes),
            "errors": list(self.errors),
            "replay_of": self.replay_of,
        }


class WebhookDispatcher:
    """Posts webhooks from a background loop; retries on the simulated clock; drops on purpose.

    ``retry_delays`` are simulated seconds between attempts (the real schedule), so the clock's
    speed-up compresses hours of retries into moments. A dropped delivery is never sent at all,
    like a webhook the real service lost.
    """

    def __init__(
        self,
        service: str,
        clock: SimClock,
        *,
        loss_rate: float = 0.0,
        seed: int = 0,
        retry_delays: Sequence[float] = (),
        connect_timeout: float = 1.0,
        timeout: float = 5.0,
        concurrency: int = 1,
        log_limit: int = 100_000,
    ) -> None:
        self.service = service
        self.clock = clock
        self.retry_delays = list(retry_delays)
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        # Bounded so a long demo or load test does not grow without limit; oldest go first.
        self.log: deque[Delivery] = deque(maxlen=log_limit)
        self._loss_rate = 0.0
        self.set_loss_rate(loss_rate)
        self._rng = random.Random(f"{seed}:{service}:webhooks")
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[Delivery] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._retries: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._pending = 0
        self._idle: asyncio.Event | None = None

    @property
    def loss_rate(self) -> float:
        return self._loss_rate

    def set_loss_rate(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"loss rate must be within [0, 1], got {rate}")
        self._loss_rate = rate

    def send(self, target: str, body: bytes, headers: dict[str, str], topic: str) -> Delivery:
        """Logs and queues one delivery, or drops it (seeded) per the loss rate."""
        delivery = self._new(target, body, headers, topic)
        if self._loss_rate > 0 and self._rng.random() < self._loss_rate:
            delivery.outcome = "dropped"
            return delivery
        self._enqueue(delivery)
        return delivery

    def replay(self, delivery_id: int, target: str | None = None) -> Delivery:
        """Sends the exact bytes and headers of an earlier delivery again (a duplicate), no loss."""
        original = self.get(delivery_id)
        delivery = self._new(
            target or original.target, original.body, dict(original.headers), original.topic
        )
        delivery.replay_of = original.id
        self._enqueue(delivery)
        return delivery

    def get(self, delivery_id: int) -> Delivery:
        for delivery in self.log:
            if delivery.id == delivery_id:
                return delivery
        raise KeyError(delivery_id)

    def _new(self, target: str, body: bytes, headers: dict[str, str], topic: str) -> Delivery:
        delivery = Delivery(
            id=next(self._ids),
            service=self.service,
            topic=topic,
            target=target,
            body=body,
            headers=headers,
            created_at=self.clock.timestamp(),
        )
        self.log.append(delivery)
        return delivery

    def _enqueue(self, delivery: Delivery) -> None:
        queue = self._ensure_started()
        self._pending += 1
        if self._idle is not None:
            self._idle.clear()
        queue.put_nowait(delivery)

    def _ensure_started(self) -> asyncio.Queue[Delivery]:
        """Starts lazily in the running loop, so apps work without a lifespan (ASGITransport)."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._idle = asyncio.Event()
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout)
            )
            self._workers = [
                asyncio.create_task(self._work(self._queue), name=f"{self.service}-webhooks")
                for _ in range(self.concurrency)
            ]
        return self._queue

    async def _work(self, queue: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await queue.get()
            try:
                await self._attempt(delivery)
            finally:
                queue.task_done()

    async def _attempt(self, delivery: Delivery) -> None:
        assert self._client is not None
        delivery.attempts += 1
        ok = False
        try:
            response = await self._client.post(
                delivery.target, content=delivery.body, headers=delivery.headers
            )
            delivery.status_codes.append(response.status_code)
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            delivery.errors.append(f"{type(exc).__name__}: {exc}")
        if ok:
            delivery.outcome = "delivered"
            self._done()
        elif delivery.attempts <= len(self.retry_delays):
            delay = self.retry_delays[delivery.attempts - 1]
            task = asyncio.create_task(self._retry_later(delivery, delay))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        else:
            delivery.outcome = "failed"
            self._done()

    async def _retry_later(self, delivery: Delivery, delay: float) -> None:
        await self.clock.sleep(delay)
        if self._queue is not None:
            self._queue.put_nowait(delivery)

    def _done(self) -> None:
        self._pending -= 1
        if self._pending == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self, timeout: float = 10.0) -> None:
        """Waits (real seconds) until every queued delivery is delivered or has failed."""
        if self._pending == 0 or self._idle is None:
            return
        await asyncio.wait_for(self._idle.wait(), timeout=timeout)

    @property
    def pending(self) -> int:
        return self._pending

    async def aclose(self) -> None:
        """Stops workers and pending retries; undelivered entries stay ``pending`` in the log."""
        tasks = [*self._workers, *self._retries]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        self._retries.clear()
        if self._client is not None:
            await self._client.aclose()
        self._client = None
        self._queue = None
        self._idle = None
        self._pending = 0
