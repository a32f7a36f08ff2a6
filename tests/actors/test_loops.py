"""The loop helper on its own (no Ray): a loop that dies is restarted, a loop that stops ticking
is reported stuck and up again once it ticks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from actors.loops import Heartbeat, Lazy, Loop, Loops


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def group(*loops: Loop) -> Loops:
    return Loops("test", loops, check_seconds=0.01, backoff_base=0.01, backoff_cap=0.05)


async def test_a_loop_whose_task_dies_is_restarted_and_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    runs = 0

    async def body(heartbeat: Heartbeat) -> None:
        nonlocal runs
        runs += 1
        heartbeat.beat()
        if runs == 1:
            raise ConnectionError("listener lost")
        while True:
            heartbeat.beat()
            await asyncio.sleep(0.01)

    loops = group(Loop("work", body, stale_after=5.0))
    caplog.set_level(logging.WARNING, logger="actors.loops")
    loops.ensure_started()
    try:
        await until(lambda: loops.report()["work"]["restarts"] == 1
                    and loops.report()["work"]["state"] == "up")
        report = loops.report()["work"]
        assert runs == 2
        assert report["last_error"] == "ConnectionError: listener lost"
        assert report["last_tick"] is not None
        assert loops.healthy()
        assert any("loop work died" in r.getMessage() for r in caplog.records)
        assert any("restarting loop work" in r.getMessage() for r in caplog.records)
    finally:
        await loops.stop()


async def test_a_loop_that_returns_counts_as_dead() -> None:
    runs = 0

    async def body(heartbeat: Heartbeat) -> None:
        nonlocal runs
        runs += 1
        heartbeat.beat()
        if runs > 1:
            await asyncio.Event().wait()

    loops = group(Loop("once", body, stale_after=5.0))
    loops.ensure_started()
    try:
        await until(lambda: loops.report()["once"]["restarts"] == 1)
        assert loops.report()["once"]["last_error"] == "RuntimeError: the loop returned"
    finally:
        await loops.stop()


async def test_a_stuck_loop_is_reported_and_up_again_when_it_ticks(
        caplog: pytest.LogCaptureFixture) -> None:
    ticking = asyncio.Event()
    ticking.set()

    async def body(heartbeat: Heartbeat) -> None:
        while True:
            await ticking.wait()  # a call that hangs: no beat while it does
            heartbeat.beat()
            await asyncio.sleep(0.01)

    loops = group(Loop("slow", body, stale_after=0.2))
    caplog.set_level(logging.WARNING, logger="actors.loops")
    loops.ensure_started()
    try:
        await until(lambda: loops.report()["slow"]["state"] == "up")
        ticking.clear()
        await until(lambda: loops.report()["slow"]["state"] == "stuck")
        assert not loops.healthy()
        assert loops.report()["slow"]["restarts"] == 0  # reported, not cancelled
        ticking.set()
        await until(lambda: loops.report()["slow"]["state"] == "up")
        assert loops.healthy()
        await until(lambda: any("ticks again" in r.getMessage() for r in caplog.records))
        stuck = [r for r in caplog.records if "is stuck" in r.getMessage()]
        assert len(stuck) == 1  # once per episode, not once per watchdog round
    finally:
        await loops.stop()


async def test_a_loop_that_never_ticks_goes_from_starting_to_stuck() -> None:
    async def body(heartbeat: Heartbeat) -> None:
        await asyncio.Event().wait()

    loops = group(Loop("silent", body, stale_after=0.2))
    loops.ensure_started()
    try:
        assert loops.report()["silent"]["state"] == "starting"
        assert not loops.healthy()
        await until(lambda: loops.report()["silent"]["state"] == "stuck")
        assert loops.report()["silent"]["last_tick"] is None
    finally:
        await loops.stop()


async def test_ensure_started_is_idempotent_and_restarts_the_watchdog() -> None:
    async def body(heartbeat: Heartbeat) -> None:
        while True:
            heartbeat.beat()
            await asyncio.sleep(0.01)

    loops = group(Loop("a", body, stale_after=5.0), Loop("b", body, stale_after=5.0))
    loops.ensure_started()
    try:
        tasks = [lp.task for lp in loops.loops.values()]
        watchdog = loops.watchdog
        loops.ensure_started()
        assert [lp.task for lp in loops.loops.values()] == tasks
        assert loops.watchdog is watchdog
        assert watchdog is not None
        watchdog.cancel()
        await until(watchdog.done)
        loops.ensure_started()
        assert loops.watchdog is not watchdog and not loops.watchdog.done()
        await until(loops.healthy)
    finally:
        await loops.stop()


async def test_waits_beat_while_they_wait() -> None:
    heartbeat = Heartbeat()
    event = asyncio.Event()
    assert await heartbeat.wait(event, 0.05) is False
    first = heartbeat.beats
    assert first >= 2  # at the start and at the end of the wait
    event.set()
    assert await heartbeat.wait(event, 5.0) is True
    await heartbeat.sleep(0.02)
    assert heartbeat.beats > first


async def test_lazy_is_made_once_and_again_only_after_a_failure() -> None:
    calls = 0

    async def make() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database down")
        return calls

    shared = Lazy(make)
    with pytest.raises(ConnectionError):
        await shared.get()
    assert await asyncio.gather(shared.get(), shared.get()) == [2, 2]
    assert calls == 2
