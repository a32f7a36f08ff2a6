"""Webhook signatures of the three services: one place that signs (sandbox) and verifies (ingress).

Every check compares in constant time and works on the exact raw bytes that were sent, never on a
re-serialisation of parsed JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
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


# Standard Webhooks (standardwebhooks.com): our outgoing deliveries.
STANDARD_WEBHOOK_SECRET_PREFIX = "whsec_"
STANDARD_WEBHOOK_TOLERANCE_SECONDS = 300


def new_standard_webhook_secret() -> str:
    """`whsec_` + base64 of 24 random bytes."""
    return STANDARD_WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def standard_webhook_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(STANDARD_WEBHOOK_SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def standard_webhook_headers(secret: str, message_id: str, timestamp: int,
                             body: bytes) -> dict[str, str]:
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_webhook_signature(secret, message_id, timestamp, body)}


def verify_standard_webhook(secret: str, headers: Mapping[str, str], body: bytes,
                            now: int) -> bool:
    """Any `v1` signature in the (space-separated) header matches, within the tolerance."""
    message_id = headers.get("webhook-id") or ""
    stamp = headers.get("webhook-timestamp") or ""
    if not message_id or not stamp.isdigit():
        return False
    if abs(now - int(stamp)) > STANDARD_WEBHOOK_TOLERANCE_SECONDS:
        return False
    expected = standard_webhook_signature(secret, message_id, int(stamp), body)
    return any(hmac.compare_digest(expected, sent)
               for sent in (headers.get("webhook-signature") or "").split())
