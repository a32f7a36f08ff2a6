"""Simulated clock and the webhook dispatcher (loss, retries, log, replay) over real sockets."""

from __future__ import annotations

import asyncio

import pytest
from sandbox_receiver import Receiver

from sandbox.clock import SimClock
from sandbox.webhooks import WebhookDispatcher


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_advance_wakes_sleepers_without_waiting() -> None:
    clock = SimClock(speedup=1.0)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(2 * 3600)  # a two-hour print
        woke.append(clock.elapsed())

    task = asyncio.create_task(sleeper())
    await settle()
    assert not woke
    clock.advance(2 * 3600)
    await asyncio.wait_for(task, 5)
    assert woke and woke[0] >= 2 * 3600


async def test_speedup_compresses_simulated_time() -> None:
    clock = SimClock(speedup=100_000.0)
    await asyncio.wait_for(clock.sleep(3600), 5)  # one simulated hour is a fraction of a second
    assert clock.elapsed() >= 3600
    with pytest.raises(ValueError):
        SimClock(speedup=0)
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_loss_rate_is_seeded_and_close_to_the_fraction() -> None:
    def outcomes(seed: int) -> list[str]:
        dispatcher = WebhookDispatcher("simplyprint", SimClock(), loss_rate=1.0, seed=seed)
        dispatcher.set_loss_rate(0.3)
        # Unreachable target is fine: only drop decisions are inspected, nothing is awaited.
        dispatcher._enqueue = lambda delivery: None  # type: ignore[method-assign]
        return [
            dispatcher.send("http://127.0.0.1:9/x", b"{}", {}, "job.done").outcome
            for _ in range(1000)
        ]

    first, again, other = outcomes(7), outcomes(7), outcomes(8)
    assert first == again
    assert first != other
    dropped = first.count("dropped")
    assert 240 <= dropped <= 360
    with pytest.raises(ValueError):
        WebhookDispatcher("x", SimClock(), loss_rate=1.5)


async def test_delivery_log_retries_and_replay(receiver: Receiver) -> None:
    clock = SimClock(speedup=1.0)
    dispatcher = WebhookDispatcher("shopify", clock, retry_delays=[0.01, 0.01, 0.01])
    receiver.fail("flaky", 2)
    delivery = dispatcher.send(receiver.url("flaky"), b'{"a": 1}', {"X-Test": "1"}, "orders/create")
    await dispatcher.drain()
    assert delivery.outcome == "delivered"
    assert delivery.attempts == 3
    assert delivery.status_codes == [500, 500, 200]
    got = receiver.got("flaky")
    assert [r.body for r in got] == [b'{"a": 1}'] * 3
    assert all(r.headers["x-test"] == "1" for r in got)

    replayed = dispatcher.replay(delivery.id)
    await dispatcher.drain()
    assert replayed.replay_of == delivery.id and replayed.outcome == "delivered"
    assert len(receiver.got("flaky")) == 4

    receiver.fail("down", 10)
    failed = dispatcher.send(receiver.url("down"), b"{}", {}, "orders/create")
    await dispatcher.drain()
    assert failed.outcome == "failed" and failed.attempts == 4
    assert [d.id for d in dispatcher.log] == [delivery.id, replayed.id, failed.id]
    await dispatcher.aclose()


async def test_all_dropped_means_nothing_arrives(receiver: Receiver) -> None:
    dispatcher = WebhookDispatcher("sendcloud", SimClock(), loss_rate=1.0)
    dropped = [dispatcher.send(receiver.url("lost"), b"{}", {}, "x") for _ in range(5)]
    await dispatcher.drain()
    assert {d.outcome for d in dropped} == {"dropped"}
    assert all(d.attempts == 0 for d in dropped)
    assert receiver.got("lost") == []
    await dispatcher.aclose()
