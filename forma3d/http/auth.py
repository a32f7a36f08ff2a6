"""Authentication: API keys, cookie sessions and the platform key, resolved to one Principal.

Key and user records are cached per process, so authentication is not a query per request; a
revocation (or any change to keys, roles or users) bumps an epoch in Redis, which every replica
reads at most every EPOCH_CHECK_SECONDS and clears its cache on change: a revoked key stops
working on every replica well within a second, and no pub/sub message can be missed.

Sessions live in Redis: an opaque id in an HTTP-only, Secure, SameSite=Strict cookie, its hash
as the Redis key (idle expiry = the key's TTL, refreshed on use; absolute expiry in the value),
and a per-user set for "sign out everywhere". Cookie-authenticated writes must echo the
session's CSRF token in X-CSRF-Token (double submit: the token is also in a readable cookie).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
import uuid
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from forma3d.db.pool import Pool
from forma3d.domain.permissions import (
    BUILTIN_ROLES,
    OWNER,
    PLATFORM_ONLY,
    builtin_permissions,
    known_permissions,
)
from forma3d.http.principal import DECLARED, Principal
from forma3d.http.problems import Problem
from forma3d.store.apikeys import KeyRecord, key_for_secret, touch_key
from forma3d.store.users import SignInUser, user_for_auth

EPOCH_KEY = "forma3d:auth:epoch"
EPOCH_CHECK_SECONDS = 0.25
CACHE_SECONDS = 30.0
LAST_USED_SECONDS = 60.0
SESSION_COOKIE = "forma3d_session"
CSRF_COOKIE = "forma3d_csrf"
CSRF_HEADER = "x-csrf-token"
PLATFORM_TENANT_HEADER = "x-forma3d-tenant"

_hasher = PasswordHasher()  # Argon2id with the library's (RFC 9106 low-memory) parameters
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    """Argon2id, off the event loop (tens of milliseconds of CPU)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches; a user without a password costs the same time as one with."""
    def check() -> bool:
        try:
            return _hasher.verify(stored or _DUMMY, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(check)


_known: tuple[int, frozenset[str]] = (-1, frozenset())
_granted: dict[str, frozenset[str]] = {}


def declared_permissions() -> frozenset[str]:
    """Every tenant permission: the catalog and what the routes declare (computed again only
    when a route module registers another)."""
    global _known
    if _known[0] != len(DECLARED):
        _known = (len(DECLARED), known_permissions(DECLARED))
        _granted.clear()
    return _known[1]


def _builtin(role: str) -> frozenset[str]:
    known = declared_permissions()
    if role not in _granted:
        _granted[role] = builtin_permissions(role, known)
    return _granted[role]


def role_grants(role: str | None, custom: Iterable[str] | None,
                own: Iterable[str] | None = None) -> frozenset[str]:
    """What a key or user holds: its own list, else its custom role's, else its built-in
    role's; no role and no list is an owner (every key made before roles existed)."""
    known = declared_permissions()
    if own is not None:
        return frozenset(own) & known
    if custom is not None:
        return frozenset(custom) & known
    if role is None or role in BUILTIN_ROLES:
        return _builtin(role or OWNER)
    return frozenset()  # a deleted custom role grants nothing


def platform_permissions() -> frozenset[str]:
    return declared_permissions() | PLATFORM_ONLY


@dataclass
class SessionPolicy:
    idle_seconds: float = 30 * 60.0
    absolute_seconds: float = 12 * 3600.0
    failures_before_lockout: int = 5
    longest_lockout_seconds: float = 15 * 60.0


@dataclass(frozen=True)
class Session:
    id_hash: str
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    csrf: str
    started: float


@dataclass
class AuthState:
    """One process's authentication caches and policies (one per Deps)."""

    platform_key: str | None = None
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    last_used_seconds: float = LAST_USED_SECONDS
    _keys: dict[str, tuple[float, KeyRecord | None]] = field(default_factory=dict)
    _users: dict[uuid.UUID, tuple[float, SignInUser | None]] = field(default_factory=dict)
    _touched: dict[uuid.UUID, float] = field(default_factory=dict)
    _epoch: bytes | None = None
    _epoch_checked: float = 0.0

    async def _fresh(self, redis: Any) -> None:
        """Clear the caches if anything changed since the last look (at most every 0.25 s)."""
        now = time.monotonic()
        if now - self._epoch_checked < EPOCH_CHECK_SECONDS:
            return
        self._epoch_checked = now
        epoch = await redis.get(EPOCH_KEY)
        if epoch != self._epoch:
            self._epoch = epoch
            self._keys.clear()
            self._users.clear()

    def forget(self) -> None:
        self._keys.clear()
        self._users.clear()

    async def key(self, pool: Pool, redis: Any, secret: str) -> KeyRecord | None:
        await self._fresh(redis)
        now = time.monotonic()
        cached = self._keys.get(secret)
        if cached and cached[0] > now:
            return cached[1]
        found = await key_for_secret(pool, secret)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[secret] = (now + CACHE_SECONDS, found)
        return found

    async def user(self, pool: Pool, redis: Any, user_id: uuid.UUID) -> SignInUser | None:
        await self._fresh(redis)
        now = time.monotonic()
        cached = self._users.get(user_id)
        if cached and cached[0] > now:
            return cached[1]
        found = await user_for_auth(pool, user_id)
        if len(self._users) > 10_000:
            self._users.clear()
        self._users[user_id] = (now + CACHE_SECONDS, found)
        return found

    async def touch(self, pool: Pool, key_id: uuid.UUID) -> None:
        """Keep last_used_at current: one UPDATE per key per `last_used_seconds` per process."""
        now = time.monotonic()
        if now - self._touched.get(key_id, -1e18) < self.last_used_seconds:
            return
        self._touched[key_id] = now
        await touch_key(pool, key_id)


async def changed(redis: Any, local: AuthState | None = None) -> None:
    """Tell every replica that keys, roles or users changed (their caches clear); this
    process's `local` caches clear at once."""
    await redis.incr(EPOCH_KEY)
    if local is not None:
        local.forget()


def client_address(scope: MutableMapping[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def key_principal(record: KeyRecord, address: str) -> Principal:
    """The principal of a live key, or the problem that refuses it."""
    if record.revoked:
        raise Problem(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        raise Problem(401, "this API key has expired", headers={"WWW-Authenticate": "Bearer"})
    if record.allowed_cidrs and not _allowed(address, record.allowed_cidrs):
        raise Problem(403, "this API key may not be used from this address")
    return Principal(record.tenant_id, "key", record.id, record.name,
                     role_grants(record.role, record.role_permissions, record.permissions))


def user_principal(found: SignInUser, session_id: str | None) -> Principal:
    user = found.user
    return Principal(user.tenant_id, "user", user.id, user.email,
                     role_grants(user.role, found.role_permissions), session_id)


def platform_principal(tenant_header: str | None) -> Principal:
    tenant_id = None
    if tenant_header:
        try:
            tenant_id = uuid.UUID(tenant_header)
        except ValueError:
            raise Problem(400, f"{PLATFORM_TENANT_HEADER} must be a tenant id") from None
    return Principal(tenant_id, "platform", None, "platform", platform_permissions())


def is_platform_key(configured: str | None, presented: str) -> bool:
    return configured is not None and configured != "" and hmac.compare_digest(
        configured.encode(), presented.encode())


def _allowed(address: str, cidrs: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)


def parse_cidrs(cidrs: Iterable[str]) -> list[str]:
    """Normalized networks (ValueError names the first that is not one)."""
    out = []
    for c in cidrs:
        try:
            out.append(str(ipaddress.ip_network(c.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"{c!r} is not an IP network in CIDR notation") from None
    return out


# --- sessions ------------------------------------------------------------------------------

def _session_key(id_hash: str) -> str:
    return f"forma3d:session:{id_hash}"


def _user_sessions_key(user_id: uuid.UUID) -> str:
    return f"forma3d:user-sessions:{user_id}"


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start_session(redis: Any, policy: SessionPolicy, user_id: uuid.UUID,
                        tenant_id: uuid.UUID) -> tuple[str, str]:
    """A new session: its id (for the cookie only) and its CSRF token."""
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    id_hash = _hash(session_id)
    value = json.dumps({"user_id": str(user_id), "tenant_id": str(tenant_id), "csrf": csrf,
                        "started": time.time()})
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(_session_key(id_hash), value, px=int(policy.idle_seconds * 1000))
        pipe.sadd(_user_sessions_key(user_id), id_hash)
        pipe.expire(_user_sessions_key(user_id), int(policy.absolute_seconds) + 60)
        await pipe.execute()
    return session_id, csrf


async def find_session(redis: Any, policy: SessionPolicy, session_id: str) -> Session | None:
    """The live session of this cookie, its idle expiry pushed back; None if it has ended."""
    id_hash = _hash(session_id)
    raw = await redis.get(_session_key(id_hash))
    if raw is None:
        return None
    value = json.loads(raw)
    if time.time() - float(value["started"]) > policy.absolute_seconds:
        await redis.delete(_session_key(id_hash))
        return None
    await redis.pexpire(_session_key(id_hash), int(policy.idle_seconds * 1000))
    return Session(id_hash, uuid.UUID(value["user_id"]), uuid.UUID(value["tenant_id"]),
                   value["csrf"], float(value["started"]))


async def end_session(redis: Any, session_id: str) -> None:
    id_hash = _hash(session_id)
    raw = await redis.get(_session_key(id_hash))
    await redis.delete(_session_key(id_hash))
    if raw is not None:
        await redis.srem(_user_sessions_key(uuid.UUID(json.loads(raw)["user_id"])), id_hash)


async def end_all_sessions(redis: Any, user_id: uuid.UUID) -> int:
    """Sign a user out everywhere; how many sessions ended."""
    hashes = await redis.smembers(_user_sessions_key(user_id))
    keys = [_session_key(h.decode() if isinstance(h, bytes) else h) for h in hashes]
    ended = int(await redis.delete(*keys)) if keys else 0
    await redis.delete(_user_sessions_key(user_id))
    return ended
