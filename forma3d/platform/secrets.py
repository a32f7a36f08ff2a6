"""Integration secrets encrypted at rest (Fernet: AES-128-CBC + HMAC), keyed by one server key.

The key comes from FORMA3D_SECRET_KEY, or is created once in the data directory for a
single-machine install; every process that decrypts gets it through the environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

KEY_ENV = "FORMA3D_SECRET_KEY"


class SecretError(RuntimeError):
    pass


def load_or_create_key(data_dir: Path) -> str:
    """The configured key, else the data directory's key file (created on first use)."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return configured
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


def _cipher() -> Fernet:
    key = os.environ.get(KEY_ENV)
    if not key:
        raise SecretError(f"{KEY_ENV} is not set in this process")
    try:
        return Fernet(key.encode())
    except ValueError as error:
        raise SecretError(f"{KEY_ENV} is not a valid key: {error}") from None


def seal(values: dict[str, Any]) -> bytes:
    return _cipher().encrypt(json.dumps(values).encode())


def unseal(token: bytes) -> dict[str, Any]:
    try:
        opened: dict[str, Any] = json.loads(_cipher().decrypt(token))
        return opened
    except InvalidToken:
        raise SecretError("integration secrets cannot be decrypted with this key") from None
