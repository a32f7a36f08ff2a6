"""Webhook signatures of the three services: one place that signs (sandbox) and verifies (ingress).

Every check compares in constant time and works on the exact raw bytes that were sent, never on a
re-serialisation of parsed JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SHOPIFY_HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SENDCLOUD_SIGNATURE_HEADER = "Sendcloud-Signature"
SIMPLYPRINT_SECRET_HEADERS = ("X-SP-Secret", "X-SP-Token")


def _digest(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def shopify_signature(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of the raw body, as Shopify sends in X-Shopify-Hmac-Sha256."""
    return base64.b64encode(_digest(secret, body)).decode()


def verify_shopify(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(shopify_signature(secret, body), signature.strip())


def sendcloud_signature(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body, as Sendcloud sends in Sendcloud-Signature."""
    return _digest(secret, body).hex()


def verify_sendcloud(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    return hmac.compare_digest(sendcloud_signature(secret, body), signature.strip().lower())


def simplyprint_headers(secret: str) -> dict[str, str]:
    """SimplyPrint sends its shared secret verbatim; both documented header names are sent."""
    return {name: secret for name in SIMPLYPRINT_SECRET_HEADERS}


def verify_simplyprint(secret: str, headers: Mapping[str, str]) -> bool:
    """Accepts either header name; the secret is compared, not an HMAC (SimplyPrint sends none)."""
    if not secret:
        return False
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in SIMPLYPRINT_SECRET_HEADERS:
        sent = lowered.get(name.lower())
        if sent is not None and hmac.compare_digest(sent.encode(), secret.encode()):
            return True
    return False
