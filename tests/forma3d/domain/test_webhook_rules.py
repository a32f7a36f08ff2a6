"""The outgoing webhooks' pure rules: when a failing subscription is switched off, and which
targets a tenant may send to."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from forma3d.domain.webhooks import TargetPolicy, disable_reason, subject_of, target_refusal

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_ten_failures_in_a_row_switch_a_subscription_off() -> None:
    assert disable_reason(9, NOW - timedelta(minutes=5), NOW) is None
    assert disable_reason(10, NOW - timedelta(minutes=5), NOW) == "10 failed deliveries in a row"
    assert disable_reason(3, NOW, NOW, max_failures=3) is not None


def test_failing_for_24_hours_switches_off_even_with_few_attempts() -> None:
    assert disable_reason(2, NOW - timedelta(hours=23, minutes=59), NOW) is None
    reason = disable_reason(2, NOW - timedelta(hours=24), NOW)
    assert reason is not None and "24.0 h" in reason
    # a success in between reset the run: no failures, no failing_since
    assert disable_reason(0, None, NOW) is None
    assert disable_reason(0, NOW - timedelta(days=3), NOW) is None


def _ips(*texts: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_address(t) for t in texts]


STRICT = TargetPolicy()
PRIVATE = TargetPolicy(allow_private=True)
LOOPBACK = TargetPolicy(allow_loopback=True)


@pytest.mark.parametrize(("scheme", "addresses", "policy", "refused"), [
    ("https", ["93.184.216.34"], STRICT, None),
    ("http", ["93.184.216.34"], STRICT, "must be https"),
    ("ftp", ["93.184.216.34"], STRICT, "must be https"),
    ("https", [], STRICT, "does not resolve"),
    ("https", ["10.0.0.5"], STRICT, "private address 10.0.0.5"),
    ("https", ["192.168.1.20"], STRICT, "private address"),
    ("https", ["172.16.0.1"], STRICT, "private address"),
    ("https", ["169.254.169.254"], STRICT, "private address"),  # cloud metadata
    ("https", ["100.64.0.1"], STRICT, "private address"),  # carrier-grade NAT
    ("https", ["fd00::1"], STRICT, "private address"),
    ("https", ["::ffff:10.0.0.1"], STRICT, "private address"),
    ("https", ["0.0.0.0"], STRICT, "private address"),
    ("https", ["93.184.216.34", "10.0.0.5"], STRICT, "private address 10.0.0.5"),
    ("https", ["127.0.0.1"], STRICT, "loopback"),
    ("http", ["::1"], STRICT, "loopback"),
    ("http", ["127.0.0.1"], LOOPBACK, None),
    ("http", ["127.0.0.1"], PRIVATE, None),
    ("https", ["10.0.0.5"], PRIVATE, None),
    ("http", ["10.0.0.5"], PRIVATE, "private target must use https"),
    ("https", ["10.0.0.5"], LOOPBACK, "private address"),
])
def test_targets(scheme: str, addresses: list[str], policy: TargetPolicy,
                 refused: str | None) -> None:
    reason = target_refusal(scheme, "hooks.example", _ips(*addresses), policy)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_a_subject_orders_its_deliveries_and_no_subject_orders_nothing() -> None:
    assert subject_of("order", "o1", "e1") == subject_of("order", "o1", "e2") == "order:o1"
    assert subject_of(None, None, "e1") != subject_of(None, None, "e2")
