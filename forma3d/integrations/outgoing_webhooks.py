"""Sending a tenant's webhook: resolve the target, refuse one the tenant may not reach, and POST
the signed body to the very address that was checked (no second DNS lookup to rebind)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from forma3d.domain.webhooks import IpAddress, TargetPolicy, target_refusal
from forma3d.integrations.signatures import standard_webhook_headers

USER_AGENT = "Forma3D-Webhooks/1"
_ERROR_CHARS = 300


class TargetRefused(ValueError):
    """The URL may not be sent to (scheme, or an address the tenant may not reach)."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int | None
    address: IpAddress  # the checked address the request goes to


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None


async def resolve(host: str) -> list[IpAddress]:
    """Every address `host` resolves to (the literal itself for an IP); [] if it does not."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None,
                                                             type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found: dict[str, IpAddress] = {}
    for info in infos:
        raw = str(info[4][0]).split("%")[0]
        found.setdefault(raw, ipaddress.ip_address(raw))
    return list(found.values())


async def check_target(url: str, policy: TargetPolicy) -> Target:
    """The target of `url` once every address it resolves to is allowed; TargetRefused else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise TargetRefused(f"not a valid URL: {error}") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if parts.username or parts.password:
        raise TargetRefused("the URL may not carry credentials")
    addresses = await resolve(host) if host and scheme in ("http", "https") else []
    reason = target_refusal(scheme, host, addresses, policy)
    if reason is not None:
        raise TargetRefused(reason)
    return Target(url, scheme, host, port, addresses[0])


def _pinned(target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with the checked address in place of the name, the Host header, and the TLS
    server name (certificates are still checked against the name)."""
    parts = urlsplit(target.url)
    literal = (f"[{target.address}]" if target.address.version == 6 else str(target.address))
    netloc = literal if target.port is None else f"{literal}:{target.port}"
    host_header = target.host if target.port is None else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"host": host_header}, extensions


async def send(client: httpx.AsyncClient, url: str, policy: TargetPolicy, secret: str,
               message_id: str, body: bytes, *, timestamp: int | None = None) -> Outcome:
    """POST `body` signed in the Standard Webhooks scheme; a 2xx is a delivery."""
    try:
        target = await check_target(url, policy)
    except TargetRefused as refused:
        return Outcome(False, None, f"target refused: {refused}")
    pinned, headers, extensions = _pinned(target)
    stamp = int(time.time()) if timestamp is None else timestamp
    headers |= {"content-type": "application/json", "user-agent": USER_AGENT,
                **standard_webhook_headers(secret, message_id, stamp, body)}
    try:
        response = await client.post(pinned, content=body, headers=headers,
                                     extensions=extensions)
    except httpx.HTTPError as error:
        return Outcome(False, None, f"{type(error).__name__}: {error}"[:_ERROR_CHARS])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}")
