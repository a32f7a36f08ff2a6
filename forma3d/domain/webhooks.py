"""Outgoing webhooks' rules, pure: which targets a tenant may send to, when a failing
subscription is switched off, and what a delivery's ordering subject is."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_CONSECUTIVE_FAILURES = 10
MAX_FAILING = timedelta(hours=24)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@dataclass(frozen=True)
class TargetPolicy:
    """What a tenant (or, for loopback, the deployment) allows beyond public https targets."""

    allow_private: bool = False  # the tenant's explicit choice: private ranges and loopback
    allow_loopback: bool = False  # development: loopback (http or https)


def disable_reason(consecutive_failures: int, failing_since: datetime | None, now: datetime, *,
                   max_failures: int = MAX_CONSECUTIVE_FAILURES,
                   max_failing: timedelta = MAX_FAILING) -> str | None:
    """Why a subscription must be switched off now, or None: `max_failures` failed attempts in a
    row, or failing without a success in between for `max_failing`."""
    if consecutive_failures >= max_failures:
        return f"{consecutive_failures} failed deliveries in a row"
    if failing_since is not None and consecutive_failures > 0 and \
            now - failing_since >= max_failing:
        hours = (now - failing_since).total_seconds() / 3600
        return f"failing for {hours:.1f} h without a successful delivery"
    return None


def _unmapped(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(address: IpAddress) -> bool:
    return _unmapped(address).is_loopback


def is_public(address: IpAddress) -> bool:
    """A globally routable unicast address (not private, link-local, shared, reserved...)."""
    found = _unmapped(address)
    return found.is_global and not found.is_multicast


def target_refusal(scheme: str, host: str, addresses: Iterable[IpAddress],
                   policy: TargetPolicy) -> str | None:
    """Why a webhook may not be sent to `scheme://host` resolving to `addresses`, or None.

    Every address counts (a name resolving to one public and one private address is refused):
    https to public addresses; loopback (http allowed) only where the deployment or the tenant
    allows it; other private addresses only over https and only where the tenant allows it."""
    found = list(addresses)
    if scheme not in ("https", "http"):
        return f"the URL must be https (got {scheme or 'no scheme'!r})"
    if not host:
        return "the URL has no host"
    if not found:
        return f"{host} does not resolve to any address"
    for address in found:
        if is_loopback(address):
            if not (policy.allow_loopback or policy.allow_private):
                return f"{host} resolves to the loopback address {address}, which is not allowed"
        elif not is_public(address):
            if not policy.allow_private:
                return (f"{host} resolves to the private address {address}; the tenant does not "
                        "allow private targets")
            if scheme != "https":
                return "a private target must use https"
        elif scheme != "https":
            return "the URL must be https (plain http is only for loopback development targets)"
    return None


def subject_of(subject_type: str | None, subject_id: str | None, event_id: str) -> str:
    """Deliveries of one subject (an order, a printer...) are sent in order; an event without a
    subject orders with nothing."""
    if subject_type and subject_id:
        return f"{subject_type}:{subject_id}"
    return f"event:{event_id}"
