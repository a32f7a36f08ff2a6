-- People, roles and keys: scoped API keys, custom roles, users with invitations and password
-- resets, and the security events of sign-ins, lockouts, key changes and cross-tenant actions.

-- A key with neither a role nor permissions is a full-power owner key (every key made before).
ALTER TABLE api_keys
    ADD COLUMN role          text,
    ADD COLUMN permissions   text[],
    ADD COLUMN expires_at    timestamptz,
    ADD COLUMN allowed_cidrs text[] NOT NULL DEFAULT '{}';

CREATE TABLE roles (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    permissions  text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email           text NOT NULL,
    name            text NOT NULL,
    role            text NOT NULL,
    password_hash   text,            -- NULL until an invitation is accepted
    failed_signins  integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));

-- One-time links: only their SHA-256 is stored.
CREATE TABLE user_tokens (
    token_hash  text PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('invitation', 'password_reset')),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_tokens_user ON user_tokens (user_id);
