"""The outbox dispatcher: empties the outbox table (forma3d.store.outbox) into the entities.

The dispatcher claims pending rows under a lease, delivers them to their
entities (in order per entity), and marks them done; a crash anywhere means redelivery, and the
entity's handled_messages row turns the repeat into a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import ray

from actors import webhooks
from actors.loops import Heartbeat, Lazy, Loop, Loops
from actors.router import EntityRouter
from forma3d import logs
from forma3d.config import settings
from forma3d.db.pool import Pool, connect, create_pool
from forma3d.domain.orders.states import OrderStatus
from forma3d.domain.printing.states import PrintJobStatus
from forma3d.messaging.envelope import Envelope, Reply
from forma3d.messaging.live import relay
from forma3d.platform import metrics
from forma3d.retry import backoff_delay
from forma3d.store import census, outbox
from forma3d.store import webhooks as webhook_store
from forma3d.store.outbox import CHANNEL

log = logging.getLogger(__name__)
DISPATCHER_NAME = "forma3d-outbox-dispatcher"
# A round delivers up to a batch, each message bounded by the ask timeout (30 s by default).
DISPATCH_STALE_SECONDS = 120.0
RELAY_STALE_SECONDS = 30.0  # a round is one Redis publish
METRICS_SECONDS = 5.0  # how often the cluster-wide gauges are read from PostgreSQL
METRICS_STALE_SECONDS = 60.0


async def sample_gauges(pool: Pool) -> None:
    """The cluster-wide gauges (outbox backlog, its oldest age and dead letters; orders and
    print jobs by status), read from PostgreSQL. Every status is set, so one that empties
    reads 0, not its last count."""
    backlog = await outbox.backlog(pool)
    metrics.set_gauge("forma3d_outbox_backlog", backlog.pending)
    metrics.set_gauge("forma3d_outbox_oldest_pending_seconds", backlog.oldest_pending_seconds)
    metrics.set_gauge("forma3d_outbox_dead_letters", backlog.dead_letters)
    orders = await census.orders_by_status(pool)
    for order_status in OrderStatus:
        metrics.set_gauge("forma3d_orders", orders.get(order_status.value, 0),
                          status=order_status.value)
    jobs = await census.print_jobs_by_status(pool)
    for job_status in PrintJobStatus:
        metrics.set_gauge("forma3d_print_jobs", jobs.get(job_status.value, 0),
                          status=job_status.value)


def _envelope(row: Any) -> Envelope:
    return Envelope(kind=row["target_kind"], key=row["target_key"], type=row["message_type"],
                    tenant_id=str(row["tenant_id"]), payload=row["payload"],
                    message_id=str(row["message_id"]), correlation_id=row["correlation_id"],
                    durable=True)


class Courier(Protocol):
    """What the dispatcher delivers through: `EntityRouter` (Ray), or `actors.local.LocalEntities`
    (in this process)."""

    ask_timeout: float

    def send(self, envelope: Envelope) -> asyncio.Future[Reply]: ...


class Dispatcher:
    """The dispatch loop without Ray, so tests and the benchmark can drive it directly.

    A delivery that overruns the ask timeout is retried like any failure, but it still runs (or
    waits in its entity's mailbox) in the host: until it resolves, it is kept by message id and
    the retry waits for it again instead of sending another copy, so a backlog does not grow by
    one copy per timeout. Only deliveries still under way are kept; a restart forgets them, and
    the entity's handled-message record makes the copy it then gets a no-op."""

    def __init__(self, pool: Pool, router: Courier, *, batch_size: int = 200,
                 lease_seconds: float = 60.0, concurrency: int = 64,
                 give_up_after: timedelta = timedelta(days=1)) -> None:
        self.pool = pool
        self.give_up_after = give_up_after
        self.router = router
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.concurrency = asyncio.Semaphore(concurrency)
        self.delivered = 0
        self.retried = 0
        self.dead = 0
        self.carried_over = 0  # retries that waited for the earlier delivery instead of sending
        self.in_flight: dict[str, asyncio.Future[Reply]] = {}  # by message id, until resolved
        self.rng = random.Random()

    async def claim(self) -> list[Any]:
        return await outbox.claim(self.pool, self.batch_size, self.lease_seconds)

    async def dispatch_once(self) -> int:
        """Claim one batch and deliver it; returns how many rows were claimed."""
        rows = await self.claim()
        if not rows:
            return 0
        groups: dict[str, list[Any]] = defaultdict(list)
        for row in sorted(rows, key=lambda r: r["id"]):
            groups[f"{row['target_kind']}:{row['target_key']}"].append(row)
        await asyncio.gather(*(self._deliver_group(g) for g in groups.values()))
        return len(rows)

    async def _deliver_group(self, rows: list[Any]) -> None:
        async with self.concurrency:
            for index, row in enumerate(rows):
                reply = await self._deliver(row)
                if reply.retryable and datetime.now(UTC) - row["created_at"] > self.give_up_after:
                    reply = Reply(error=f"gave up after {row['attempts']} attempts: {reply.error}")
                if reply.ok or not reply.retryable:
                    await self._finish(row, reply)
                else:
                    # Keep per-entity order: everything after a retry waits its turn too.
                    for later in rows[index:]:
                        await self._retry(later, reply.error or "retry")
                    return

    async def _deliver(self, row: Any) -> Reply:
        token = logs.correlation_id.set(row["correlation_id"])
        try:
            # Shielded: a timeout ends this wait, not the delivery a retry may wait for again.
            return await asyncio.wait_for(asyncio.shield(self._attempt(row)),
                                          self.router.ask_timeout)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                TimeoutError) as error:
            return Reply(error=f"host unavailable: {type(error).__name__}",
                         error_type=type(error).__name__, retryable=True)
        finally:
            logs.correlation_id.reset(token)

    def _attempt(self, row: Any) -> asyncio.Future[Reply]:
        """The message's delivery still under way from an earlier round, or a new one."""
        message_id = str(row["message_id"])
        earlier = self.in_flight.get(message_id)
        if earlier is not None:
            self.carried_over += 1
            return earlier
        attempt = self.router.send(_envelope(row))
        self.in_flight[message_id] = attempt

        def resolved(done: asyncio.Future[Reply]) -> None:
            if self.in_flight.get(message_id) is done:
                del self.in_flight[message_id]

        attempt.add_done_callback(resolved)
        return attempt

    async def _finish(self, row: Any, reply: Reply) -> None:
        if reply.ok:
            self.delivered += 1
        else:
            # A refusal will not change on redelivery: keep it visible, stop retrying.
            self.dead += 1
            log.error("outbox message %s refused by %s: %s", row["message_id"],
                      row["target_key"], reply.error)
        await outbox.finish(self.pool, row["id"], reply.error)

    async def _retry(self, row: Any, error: str) -> None:
        self.retried += 1
        delay = backoff_delay(row["attempts"], base=0.1, cap=30.0, rng=self.rng)
        await outbox.retry_later(self.pool, row["id"], delay, error)

    async def pending(self) -> int:
        return await outbox.pending(self.pool)

    async def run(self, database_url: str, poll_seconds: float = 0.5,
                  heartbeat: Heartbeat | None = None) -> None:
        """Dispatch forever, woken by NOTIFY and by a poll for retries coming due; beats
        `heartbeat` once per round."""
        beat = heartbeat or Heartbeat()
        wake = asyncio.Event()
        listener = await connect(database_url)
        await listener.add_listener(CHANNEL, lambda *_: wake.set())
        try:
            while True:
                beat.beat()
                if listener.is_closed():  # NOTIFYs would stop: let the loop restart
                    raise ConnectionError("the outbox listener's connection closed")
                try:
                    if await self.dispatch_once():
                        continue
                except Exception:
                    log.exception("outbox dispatch failed; retrying")
                wake.clear()
                await beat.wait(wake, poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()


@ray.remote(num_cpus=0)
class OutboxDispatcher:
    """The Ray actor that runs the dispatch loop (and the live-event relay) for the whole
    cluster. Its loops start in the constructor, so a restart (Ray re-runs it) resumes them."""

    def __init__(self, database_url: str, host_count: int, batch_size: int = 200) -> None:
        self.config = settings()
        logs.configure(self.config.log_level)
        self.database_url = database_url
        self.host_count = host_count
        self.batch_size = batch_size
        self.dispatcher = Lazy(self._make_dispatcher)
        self.sender = Lazy(self._make_sender)
        loops = [Loop("dispatch", self._dispatch, stale_after=DISPATCH_STALE_SECONDS),
                 Loop("webhooks", self._webhooks, stale_after=webhooks.STALE_SECONDS),
                 Loop("metrics", self._metrics, stale_after=METRICS_STALE_SECONDS)]
        if self.config.redis_url:  # the same process relays committed events to dashboards
            loops.append(Loop("relay", self._relay, stale_after=RELAY_STALE_SECONDS))
        self.loops = Loops("outbox-dispatcher", loops)
        self.loops.ensure_started()

    async def _make_dispatcher(self) -> Dispatcher:
        router = EntityRouter.connect(self.host_count)  # first: it does no I/O to undo
        pool = await create_pool(self.database_url, max_size=4)
        try:
            # The cluster's only dispatcher: leases its previous incarnation held (it died, or
            # Ray would not have restarted it) are taken over now, not when they expire.
            released = await outbox.release_claims(pool)
        except BaseException:
            await pool.close()
            raise
        if released:
            log.warning("took over %d outbox rows claimed before a restart", released)
        return Dispatcher(pool, router, batch_size=self.batch_size)

    async def _make_sender(self) -> webhooks.WebhookSender:
        pool = await create_pool(self.database_url, max_size=4)
        try:
            # The cluster's only sender: its previous incarnation's leases are taken over now.
            released = await webhook_store.release_claims(pool)
        except BaseException:
            await pool.close()
            raise
        if released:
            log.warning("took over %d webhook deliveries claimed before a restart", released)
        return webhooks.WebhookSender(pool, webhooks.SenderConfig.of(self.config))

    async def _webhooks(self, heartbeat: Heartbeat) -> None:
        sender = await self.sender.get()
        await sender.run(self.database_url, heartbeat=heartbeat)

    async def _dispatch(self, heartbeat: Heartbeat) -> None:
        dispatcher = await self.dispatcher.get()
        await dispatcher.run(self.database_url, heartbeat=heartbeat)

    async def _metrics(self, heartbeat: Heartbeat) -> None:
        dispatcher = await self.dispatcher.get()
        while True:
            heartbeat.beat()
            try:
                await sample_gauges(dispatcher.pool)
            except Exception as error:  # PostgreSQL away: the next round tries again
                log.warning("metrics not sampled: %s", error)
            await heartbeat.sleep(METRICS_SECONDS)

    async def _relay(self, heartbeat: Heartbeat) -> None:
        await relay(self.database_url, self.config.redis_url or "", heartbeat.beat)

    async def start(self) -> bool:
        """Idempotent: the loops already run; starts any that never did."""
        self.loops.ensure_started()
        return True

    async def status(self) -> dict[str, Any]:
        self.loops.ensure_started()
        result: dict[str, Any] = {"pid": os.getpid(), "running": self.loops.healthy(),
                                  "loops": self.loops.report()}
        dispatcher = self.dispatcher.value
        if dispatcher is not None:
            result.update(delivered=dispatcher.delivered, retried=dispatcher.retried,
                          dead=dispatcher.dead, carried_over=dispatcher.carried_over,
                          in_flight=len(dispatcher.in_flight))
            with contextlib.suppress(Exception):
                result["pending"] = await asyncio.wait_for(dispatcher.pending(), 2.0)
        sender = self.sender.value
        if sender is not None:
            result.update(webhooks_sent=sender.sent, webhooks_failed=sender.failures,
                          webhooks_disabled=sender.disabled)
        return result
