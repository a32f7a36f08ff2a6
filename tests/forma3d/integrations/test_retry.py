"""The shared retry policy (pure) and the base client's error mapping, with an injected sleep."""

from __future__ import annotations

import pickle
import random
from datetime import UTC, datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forma3d.integrations.errors import (
    AuthenticationError,
    IntegrationError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from forma3d.integrations.http import BaseClient
from forma3d.integrations.retry import (
    RetryPolicy,
    call_limit_delay,
    parse_retry_after,
    retry_call,
)


class FakeSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class MaxRng(random.Random):
    """uniform() returns its upper bound, so backoff ceilings become observable."""

    def uniform(self, a: float, b: float) -> float:
        return b


# -- policy (pure)


def test_full_jitter_stays_within_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    rng = random.Random(7)
    for retry_number, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        assert policy.backoff_ceiling(retry_number) == ceiling
        samples = [policy.backoff(retry_number, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # jitter spreads over the whole range
        assert min(samples) < ceiling * 0.2


def test_backoff_ceiling_survives_huge_retry_numbers() -> None:
    assert RetryPolicy(max_delay=30).backoff_ceiling(10_000) == 30


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2.0", 2.0),  # Shopify's form
        ("3", 3.0),
        (" 7 ", 7.0),
        ("-4", 0.0),
        ("Wed, 21 Oct 2026 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(header, now) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1/40", 0.0),
        ("32/40", 0.0),
        ("36/40", 2.0),
        ("40/40", 4.0),
        ("39/40", 3.5),
        ("390/400", 3.5),  # Plus: bucket 400 leaking 20/s
        ("garbage", 0.0),
        ("1/0", 0.0),
        (None, 0.0),
    ],
)
def test_call_limit_slows_down_near_full_bucket(header: str | None, expected: float) -> None:
    assert call_limit_delay(header, headroom=0.8) == expected


def test_call_limit_uses_a_known_leak_rate() -> None:
    assert call_limit_delay("40/40", leak_rate=4.0) == 2.0  # Advanced plan


async def test_retry_call_gives_up_after_max_attempts() -> None:
    sleep = FakeSleep()
    calls = 0

    async def always_503() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("svc", "busy", status=503)

    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=100, max_total_delay=100)
    with pytest.raises(TransientError) as info:
        await retry_call(always_503, policy=policy, sleep=sleep, rng=MaxRng())
    assert calls == 4
    assert info.value.attempts == 4
    assert sleep.calls == [1.0, 2.0, 4.0]


async def test_retry_call_gives_up_when_budget_would_be_exceeded() -> None:
    sleep = FakeSleep()

    async def fails() -> None:
        raise TransientError("svc", "busy")

    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=100, max_total_delay=5.0)
    with pytest.raises(TransientError) as info:
        await retry_call(fails, policy=policy, sleep=sleep, rng=MaxRng())
    assert sleep.calls == [1.0, 2.0]  # the next 4.0 would pass the 5 s budget
    assert info.value.attempts == 3


async def test_retry_after_overrides_backoff_and_counts_against_budget() -> None:
    sleep = FakeSleep()
    answers: list[Exception | str] = [
        RateLimitedError("svc", "slow down", status=429, retry_after=2.0),
        RateLimitedError("svc", "slow down", status=429, retry_after=0.0),
        "ok",
    ]

    async def attempt() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await retry_call(attempt, policy=RetryPolicy(), sleep=sleep, rng=MaxRng()) == "ok"
    assert sleep.calls == [2.0, 0.0]

    async def huge_wait() -> str:
        raise RateLimitedError("svc", "later", status=429, retry_after=3600)

    with pytest.raises(RateLimitedError):
        await retry_call(huge_wait, policy=RetryPolicy(max_total_delay=60), sleep=sleep)


async def test_permanent_errors_are_not_retried() -> None:
    sleep = FakeSleep()

    async def rejected() -> None:
        raise RejectedError("svc", "bad input", status=422)

    with pytest.raises(RejectedError) as info:
        await retry_call(rejected, policy=RetryPolicy(), sleep=sleep)
    assert sleep.calls == []
    assert info.value.attempts == 1


def test_errors_pickle_with_their_fields() -> None:
    err = RateLimitedError("shopify", "Exceeded", status=429, retry_after=2.0, body={"e": 1})
    err.attempts = 3
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is RateLimitedError
    assert (copy.service, copy.status, copy.message, copy.retry_after, copy.attempts) == (
        "shopify",
        429,
        "Exceeded",
        2.0,
        3,
    )
    assert str(copy) == "shopify 429: Exceeded"
    assert isinstance(copy, TransientError) and copy.retryable
    assert not PermanentError("x", "y").retryable


# -- base client over a tiny ASGI app


class Flaky(httpx.AsyncBaseTransport):
    """Raises queued transport errors, before or after the app saw the request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.plan: list[tuple[Exception, bool]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.plan:
            error, after = self.plan.pop(0)
            if after:
                await self.inner.handle_async_request(request)
            raise error
        return await self.inner.handle_async_request(request)


def make_app() -> tuple[Starlette, dict[str, int]]:
    seen: dict[str, int] = {}

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        key = f"{request.method} {code}"
        seen[key] = seen.get(key, 0) + 1
        if code == 200:
            return JSONResponse({"ok": True})
        if code == 429:
            return Response(status_code=429, headers={"Retry-After": "1.5"})
        return JSONResponse({"message": f"status {code}"}, status_code=code)

    async def flip(request: Request) -> Response:
        seen["flip"] = seen.get("flip", 0) + 1
        if seen["flip"] < 3:
            return JSONResponse({"error": {"code": 502, "message": "bad gateway"}}, status_code=502)
        return JSONResponse({"ok": True})

    routes = [
        Route("/status/{code}", status, methods=["GET", "POST"]),
        Route("/flip", flip, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes), seen


def make_client(sleep: FakeSleep, **kwargs: object) -> tuple[BaseClient, Flaky, dict[str, int]]:
    app, seen = make_app()
    flaky = Flaky(httpx.ASGITransport(app=app))
    client = BaseClient(
        "http://svc.test/", transport=flaky, sleep=sleep, rng=MaxRng(), retry=RetryPolicy()
    )
    return client, flaky, seen


async def test_5xx_is_retried_then_succeeds() -> None:
    sleep = FakeSleep()
    client, _, seen = make_client(sleep)
    async with client:
        response = await client.request("GET", "flip")
    assert response.json() == {"ok": True}
    assert seen["flip"] == 3
    assert sleep.calls == [0.5, 1.0]


async def test_status_mapping() -> None:
    sleep = FakeSleep()
    client, _, _ = make_client(sleep)
    expected: dict[int, type[IntegrationError]] = {
        400: RejectedError,
        401: AuthenticationError,
        403: AuthenticationError,
        404: NotFoundError,
        422: RejectedError,
    }
    async with client:
        for code, error_type in expected.items():
            with pytest.raises(error_type) as info:
                await client.request("GET", f"status/{code}")
            assert info.value.status == code
            assert info.value.message == f"status {code}"
            assert info.value.service == "http"
        assert sleep.calls == []
        with pytest.raises(RateLimitedError) as limited:
            await client.request("GET", "status/429")
    assert limited.value.retry_after == 1.5
    assert limited.value.attempts == 5
    assert sleep.calls == [1.5] * 4


async def test_connect_errors_are_retried_even_for_creates() -> None:
    sleep = FakeSleep()
    client, flaky, seen = make_client(sleep)
    flaky.plan = [(httpx.ConnectError("refused"), False), (httpx.ConnectTimeout("slow"), False)]
    async with client:
        response = await client.request("POST", "status/200", idempotent=False)
    assert response.status_code == 200
    assert seen["POST 200"] == 1


async def test_ambiguous_failures_of_creates_are_raised_not_repeated() -> None:
    sleep = FakeSleep()
    client, flaky, seen = make_client(sleep)
    flaky.plan = [(httpx.ReadTimeout("no answer"), True)]
    async with client:
        with pytest.raises(TransientError) as info:
            await client.request("POST", "status/200", idempotent=False)
        assert info.value.ambiguous
        assert seen["POST 200"] == 1  # the service did act; we did not send it twice
        with pytest.raises(TransientError) as gateway:
            await client.request("POST", "flip", idempotent=False)
        assert gateway.value.ambiguous and gateway.value.status == 502
        assert gateway.value.message == "bad gateway"
    assert sleep.calls == []


async def test_ambiguous_failures_of_reads_are_retried() -> None:
    sleep = FakeSleep()
    client, flaky, seen = make_client(sleep)
    flaky.plan = [(httpx.ReadTimeout("no answer"), True), (httpx.RemoteProtocolError("eof"), True)]
    async with client:
        response = await client.request("GET", "status/200")
    assert response.status_code == 200
    assert seen["GET 200"] == 3


async def test_ok_statuses_are_returned_not_raised() -> None:
    client, _, _ = make_client(FakeSleep())
    async with client:
        response = await client.request("POST", "status/410", ok_statuses=(410,))
    assert response.status_code == 410
