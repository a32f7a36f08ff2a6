"""Destination state or province codes, as each Sendcloud API version wants them.

Sendcloud needs a state for the USA, Canada, Italy and Australia. v2's `country_state` takes the
bare subdivision code ("NY", "RM"); v3's `state_province_code` takes ISO 3166-2 ("US-NY",
"IT-RM", at most 14 characters). Shopify's `province_code` is the bare code for these countries
(AU codes such as "NSW" are the ISO 3166-2 subdivision codes too).
"""

from __future__ import annotations

STATE_REQUIRED = frozenset({"US", "CA", "IT", "AU"})
_MAX_V3 = 14


def needs_state(country: str | None) -> bool:
    """Only these destinations get a state: elsewhere Shopify's province codes need not be
    ISO 3166-2, and a state Sendcloud does not need could only get the shipment refused."""
    return (country or "").strip().upper() in STATE_REQUIRED


def bare_state_code(country: str | None, province: str | None) -> str | None:
    """The subdivision part ("NY") of a Shopify province code or an ISO 3166-2 code."""
    if not province or not province.strip():
        return None
    code = province.strip().upper()
    prefix = f"{(country or '').strip().upper()}-"
    if len(prefix) == 3 and code.startswith(prefix):
        code = code[len(prefix):]
    return code or None


def iso_state_code(country: str | None, province: str | None) -> str | None:
    """ISO 3166-2 form ("US-NY") of a province code, or None when there is none.

    Raises ValueError for a code that cannot be one (too long for Sendcloud v3).
    """
    bare = bare_state_code(country, province)
    iso2 = (country or "").strip().upper()
    if bare is None or len(iso2) != 2:
        return None
    code = f"{iso2}-{bare}"
    if len(code) > _MAX_V3 or not bare.replace("-", "").isalnum():
        raise ValueError(f"state or province code {province!r} is not an ISO 3166-2 code")
    return code
