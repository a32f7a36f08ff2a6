"""Sendcloud v3 at the domain edge: state codes in each API version's form, status codes."""

from __future__ import annotations

import pytest

from forma3d.domain.shipping.address import bare_state_code, iso_state_code, needs_state
from forma3d.domain.shipping.states import ShipmentStatus, status_from_sendcloud_code


@pytest.mark.parametrize(("country", "province", "bare", "iso"), [
    ("US", "NY", "NY", "US-NY"), ("ca", "qc", "QC", "CA-QC"), ("IT", "RM", "RM", "IT-RM"),
    ("AU", "NSW", "NSW", "AU-NSW"), ("US", "US-CA", "CA", "US-CA"), ("US", " ", None, None),
    ("US", None, None, None)])
def test_state_codes(country: str, province: str | None, bare: str | None,
                     iso: str | None) -> None:
    assert bare_state_code(country, province) == bare
    assert iso_state_code(country, province) == iso


def test_only_the_four_countries_need_a_state_and_bad_codes_are_refused() -> None:
    assert [c for c in ("US", "CA", "IT", "AU", "NL", "DE", "") if needs_state(c)] == [
        "US", "CA", "IT", "AU"]
    with pytest.raises(ValueError, match="ISO 3166-2"):
        iso_state_code("US", "NEW YORK STATE")


def test_v3_status_codes_map_once_and_unknown_codes_keep_the_state() -> None:
    assert status_from_sendcloud_code("READY_TO_SEND") is ShipmentStatus.LABEL_CREATED
    assert status_from_sendcloud_code("announcement_failed") is ShipmentStatus.FAILED
    assert status_from_sendcloud_code("DELIVERED") is ShipmentStatus.DELIVERED
    assert status_from_sendcloud_code("CANCELLED") is ShipmentStatus.CANCELLED
    assert status_from_sendcloud_code("SOMETHING_NEW") is None
    assert status_from_sendcloud_code(None) is None
