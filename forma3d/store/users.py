"""Users of a tenant, their one-time links (invitation, password reset) and sign-in failures.

Passwords arrive here already hashed (Argon2id, forma3d.http.passwords); one-time tokens are
stored as their SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from forma3d.db.pool import Connection, Pool, record_to_dict

TokenPurpose = Literal["invitation", "password_reset"]


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    name: str
    role: str
    password_hash: str | None
    failed_signins: int
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SignInUser:
    """A user as authentication needs it: with its custom role's permissions, if any."""

    user: User
    role_permissions: tuple[str, ...] | None
    tenant_settings: dict[str, object]


def _user(row: Any) -> User:
    return User(**record_to_dict(row))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(db: Pool | Connection, tenant_id: uuid.UUID, email: str, name: str,
                      role: str, password_hash: str | None = None) -> User | None:
    """The new user, or None when the tenant has a user with this email already."""
    row = await db.fetchrow(
        """INSERT INTO users (id, tenant_id, email, name, role, password_hash)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *""",
        uuid.uuid4(), tenant_id, email.strip(), name, role, password_hash)
    return _user(row) if row else None


async def list_users(db: Pool | Connection, tenant_id: uuid.UUID) -> list[User]:
    rows = await db.fetch("SELECT * FROM users WHERE tenant_id = $1 ORDER BY email", tenant_id)
    return [_user(r) for r in rows]


async def get_user(db: Pool | Connection, tenant_id: uuid.UUID, user_id: uuid.UUID
                   ) -> User | None:
    row = await db.fetchrow("SELECT * FROM users WHERE tenant_id = $1 AND id = $2",
                            tenant_id, user_id)
    return _user(row) if row else None


async def user_by_email(db: Pool | Connection, tenant_id: uuid.UUID, email: str) -> User | None:
    row = await db.fetchrow(
        "SELECT * FROM users WHERE tenant_id = $1 AND lower(email) = lower($2)",
        tenant_id, email.strip())
    return _user(row) if row else None


async def user_for_auth(db: Pool | Connection, user_id: uuid.UUID) -> SignInUser | None:
    row = await db.fetchrow(
        """SELECT u.*, r.permissions AS role_permissions, t.settings AS tenant_settings
             FROM users u JOIN tenants t ON t.id = u.tenant_id
             LEFT JOIN roles r ON r.tenant_id = u.tenant_id AND r.name = u.role
            WHERE u.id = $1""", user_id)
    if row is None:
        return None
    found = record_to_dict(row)
    role_permissions = found.pop("role_permissions")
    settings = found.pop("tenant_settings") or {}
    return SignInUser(User(**found),
                      tuple(role_permissions) if role_permissions is not None else None,
                      settings)


async def update_user(db: Pool | Connection, tenant_id: uuid.UUID, user_id: uuid.UUID, *,
                      name: str | None = None, role: str | None = None) -> User | None:
    row = await db.fetchrow(
        """UPDATE users SET name = coalesce($3, name), role = coalesce($4, role),
                            updated_at = now()
            WHERE tenant_id = $1 AND id = $2 RETURNING *""", tenant_id, user_id, name, role)
    return _user(row) if row else None


async def delete_user(db: Pool | Connection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    status: str = await db.execute("DELETE FROM users WHERE tenant_id = $1 AND id = $2",
                                   tenant_id, user_id)
    return status.endswith(" 1")


async def count_owners(db: Pool | Connection, tenant_id: uuid.UUID) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner'", tenant_id)
    return count


async def record_failure(db: Pool | Connection, user_id: uuid.UUID, free: int,
                         longest: float) -> User:
    """One more failed sign-in; past `free` failures the account locks for a delay that
    doubles with each further failure (1 s, 2 s, 4 s, ... at most `longest`)."""
    row = await db.fetchrow(
        """UPDATE users SET failed_signins = failed_signins + 1,
                  locked_until = CASE WHEN failed_signins + 1 >= $2
                      THEN now() + make_interval(secs => least($3::float8,
                               power(2, failed_signins + 1 - $2)::float8))
                      ELSE locked_until END
            WHERE id = $1 RETURNING *""", user_id, free, longest)
    return _user(row)


async def record_success(db: Pool | Connection, user_id: uuid.UUID) -> None:
    await db.execute(
        "UPDATE users SET failed_signins = 0, locked_until = NULL WHERE id = $1", user_id)


async def set_password(db: Pool | Connection, user_id: uuid.UUID, password_hash: str) -> None:
    await db.execute(
        """UPDATE users SET password_hash = $2, failed_signins = 0, locked_until = NULL,
                            updated_at = now() WHERE id = $1""", user_id, password_hash)


async def issue_token(db: Pool | Connection, user: User, purpose: TokenPurpose,
                      valid_for: timedelta) -> tuple[str, datetime]:
    """A new one-time token for `user` (earlier unused ones of the purpose stop working)."""
    token = secrets.token_urlsafe(32)
    await db.execute(
        """UPDATE user_tokens SET used_at = now()
            WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL""", user.id, purpose)
    expires_at: datetime = await db.fetchval(
        """INSERT INTO user_tokens (token_hash, tenant_id, user_id, purpose, expires_at)
           VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING expires_at""",
        token_hash(token), user.tenant_id, user.id, purpose, valid_for)
    return token, expires_at


async def use_token(db: Pool | Connection, token: str, purpose: TokenPurpose) -> User | None:
    """The user an unused, unexpired token is for, marking it used; None otherwise."""
    user_id = await db.fetchval(
        """UPDATE user_tokens SET used_at = now()
            WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
            RETURNING user_id""", token_hash(token), purpose)
    if user_id is None:
        return None
    row = await db.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    return _user(row) if row else None
