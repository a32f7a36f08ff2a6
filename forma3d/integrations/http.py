"""Small base client around httpx.AsyncClient, shared by the Shopify, SimplyPrint and Sendcloud
clients.

It owns the one retry loop (forma3d.integrations.retry), turns HTTP and transport failures into the
typed errors of forma3d.integrations.errors, and lets a subclass pace its calls (Shopify's bucket).
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, ClassVar, Self, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forma3d.integrations.errors import (
    AuthenticationError,
    IntegrationError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RejectedError,
    TransientError,
    UnexpectedResponseError,
)
from forma3d.integrations.retry import RetryPolicy, Sleep, parse_retry_after, retry_call
from forma3d.platform import metrics

T = TypeVar("T")
M = TypeVar("M", bound="ApiModel")

DEFAULT_TIMEOUT = 10.0
Params = Mapping[str, str | int | float | bool | None]

# 408 and 503 ("offline for maintenance") mean the request was not processed; other 5xx may
# have been.
_UNPROCESSED = frozenset({408, 503})


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client: building one loads the CA bundle,
    tens of milliseconds of CPU (far more on a loaded machine), and handlers make a client per
    call (a backlog of SimplyPrint webhooks spent most of the tenant entity's time on it)."""
    return httpx.create_ssl_context()


class ApiModel(BaseModel):
    """Typed view of an API object: only the fields we use, plus the untouched payload as `raw`."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    raw: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_raw(cls, data: Any) -> Any:
        # Nested models keep their own payload too, so callers can reach undeclared fields.
        if isinstance(data, dict) and "raw" not in data:
            return {**data, "raw": data}
        return data

    @classmethod
    def from_api(cls, data: Any, *, service: str = "api") -> Self:
        if not isinstance(data, dict):
            raise UnexpectedResponseError(
                service, f"expected an object for {cls.__name__}", body=data
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise UnexpectedResponseError(
                service, f"{cls.__name__} does not match the documented shape: {exc}", body=data
            ) from exc


class BaseClient:
    """One httpx.AsyncClient plus retry policy, injectable sleep/RNG and error classification.

    Subclasses set `service`, build auth headers, and may override `error_message` (to read the
    service's error envelope) and `pacing_delay` (to slow down before the next call).
    """

    service: ClassVar[str] = "http"

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retry_policy = retry or RetryPolicy()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._pending_pause = 0.0
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            verify=tls_context(),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the retry loop

    async def retrying(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        should_retry: Callable[[IntegrationError], bool] | None = None,
    ) -> T:
        """Run one logical call under this client's policy, sleep and RNG."""
        return await retry_call(
            attempt,
            policy=self.retry_policy,
            sleep=self._sleep,
            rng=self._rng,
            should_retry=should_retry,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
        ok_statuses: Collection[int] = (),
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send with retries. A non-idempotent request is retried only when it surely did not reach
        the service (connect failure, 429, 503); otherwise the ambiguous error is raised so the
        caller can look before creating again."""

        async def attempt() -> httpx.Response:
            return await self.send_once(
                method,
                url,
                params=params,
                json=json,
                data=data,
                files=files,
                headers=headers,
                ok_statuses=ok_statuses,
                timeout=timeout,
            )

        def decide(err: IntegrationError) -> bool:
            return err.retryable and (idempotent or not err.ambiguous)

        return await self.retrying(attempt, should_retry=decide)

    async def send_once(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        ok_statuses: Collection[int] = (),
        timeout: float | None = None,
    ) -> httpx.Response:
        """Exactly one HTTP exchange: 2xx (or an `ok_statuses` code) returns, all else raises.
        Its latency, and its error if any, go to the integration metrics."""
        await self._pause_if_asked()
        started = time.perf_counter()
        try:
            return await self._exchange(method, url, params=params, json=json, data=data,
                                        files=files, headers=headers, ok_statuses=ok_statuses,
                                        timeout=timeout)
        except IntegrationError as error:
            metrics.inc("forma3d_integration_errors", service=self.service,
                        error=type(error).__name__)
            raise
        finally:
            metrics.observe("forma3d_integration_call_seconds", time.perf_counter() - started,
                            service=self.service)

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        params: Params | None,
        json: Any,
        data: Mapping[str, str] | None,
        files: Mapping[str, tuple[str, bytes, str]] | None,
        headers: Mapping[str, str] | None,
        ok_statuses: Collection[int],
        timeout: float | None,
    ) -> httpx.Response:
        clean_params = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            response = await self._http.request(
                method,
                url,
                params=clean_params or None,
                json=json,
                data=data,
                files=files,
                headers=headers,
                timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout),
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(self.service, f"cannot connect: {exc!r}") from exc
        except httpx.TransportError as exc:
            # Read timeouts, dropped connections, protocol errors: the service may have acted.
            raise TransientError(
                self.service, f"no complete answer: {exc!r}", ambiguous=True
            ) from exc
        if response.status_code != 429:  # on 429 the Retry-After wait already covers it
            self._pending_pause = max(self._pending_pause, self.pacing_delay(response))
        if response.is_success or response.status_code in ok_statuses:
            return response
        raise self.error_for(response)

    # -- hooks

    def pacing_delay(self, response: httpx.Response) -> float:
        """Seconds to wait before this client's next call; 0 unless a service says otherwise."""
        return 0.0

    def error_message(self, response: httpx.Response, body: Any) -> str:
        """Human-readable reason from the service's error body; subclasses know their envelope."""
        if isinstance(body, dict):
            for key in ("message", "error", "errors"):
                if body.get(key):
                    return flatten_errors(body[key])
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase or f"HTTP {response.status_code}"

    def error_for(self, response: httpx.Response) -> IntegrationError:
        """Map an HTTP status to the typed error the retry loop and the caller understand."""
        status = response.status_code
        body = _maybe_json(response)
        message = self.error_message(response, body)
        kwargs: dict[str, Any] = {"status": status, "body": body}
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return RateLimitedError(self.service, message, retry_after=retry_after, **kwargs)
        if status >= 500 or status == 408:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            ambiguous = status not in _UNPROCESSED
            return TransientError(
                self.service, message, ambiguous=ambiguous, retry_after=retry_after, **kwargs
            )
        if status in (401, 403):
            return AuthenticationError(self.service, message, **kwargs)
        if status == 404:
            return NotFoundError(self.service, message, **kwargs)
        if 400 <= status < 500:
            return RejectedError(self.service, message, **kwargs)
        return PermanentError(self.service, f"unexpected HTTP {status}: {message}", **kwargs)

    # -- helpers

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """The body as a JSON object, or UnexpectedResponseError (never a bare ValueError)."""
        try:
            body = response.json()
        except ValueError as exc:
            raise UnexpectedResponseError(
                self.service,
                f"answer is not JSON: {response.text[:200]!r}",
                status=response.status_code,
            ) from exc
        if not isinstance(body, dict):
            raise UnexpectedResponseError(
                self.service, "answer is not a JSON object", status=response.status_code, body=body
            )
        return body

    def parse(self, model: type[M], data: Any) -> M:
        return model.from_api(data, service=self.service)

    async def _pause_if_asked(self) -> None:
        pause, self._pending_pause = self._pending_pause, 0.0
        if pause > 0:
            await self._sleep(pause)


def _param(value: str | int | float | bool) -> str | int | float:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _maybe_json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def flatten_errors(value: Any) -> str:
    """Error bodies nest ({"errors": {"fulfillment": ["..."]}}); make one readable line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "message" in value and isinstance(value["message"], str):
            return value["message"]
        return "; ".join(f"{k}: {flatten_errors(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(flatten_errors(v) for v in value)
    return str(value)
