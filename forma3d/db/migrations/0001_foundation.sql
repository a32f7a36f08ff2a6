-- Tenants, API keys, durable messaging (outbox + handled messages), event log, printers, stock.
-- Every tenant-owned table carries tenant_id with a foreign key; its indexes start with tenant_id.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO tenants (id, slug, name)
VALUES ('00000000-0000-0000-0000-000000000001', 'default', 'Default tenant');

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    prefix        text NOT NULL,
    key_hash      text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

-- Messages that must not be lost, written in the same transaction as the change that causes
-- them. The dispatcher scans across tenants, so its index is the pending-row partial index.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    message_id      uuid NOT NULL UNIQUE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    target_kind     text NOT NULL,
    target_key      text NOT NULL,
    message_type    text NOT NULL,
    payload         jsonb NOT NULL,
    correlation_id  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    available_at    timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    done_at         timestamptz
);
CREATE INDEX outbox_pending ON outbox (available_at, id) WHERE done_at IS NULL;
CREATE INDEX outbox_tenant ON outbox (tenant_id, created_at);

-- One row per durable message an entity has applied, written in the handler's transaction:
-- a redelivered message finds its row and changes nothing.
CREATE TABLE handled_messages (
    message_id  uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entity_key  text NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX handled_messages_tenant ON handled_messages (tenant_id, handled_at);

CREATE TABLE event_log (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type            text NOT NULL,
    version         integer NOT NULL DEFAULT 1,
    subject_type    text,
    subject_id      text,
    correlation_id  text,
    source          text NOT NULL,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    data            jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX event_log_tenant_time ON event_log (tenant_id, occurred_at);
CREATE INDEX event_log_tenant_subject ON event_log (tenant_id, subject_type, subject_id);

CREATE TABLE printers (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL,
    external_id      text,
    model            text,
    nozzle_diameter  numeric(4, 2),
    state            text NOT NULL DEFAULT 'offline',
    online           boolean NOT NULL DEFAULT false,
    enabled          boolean NOT NULL DEFAULT true,
    ready            boolean NOT NULL DEFAULT false,
    tags             text[] NOT NULL DEFAULT '{}',
    materials        jsonb NOT NULL DEFAULT '[]'::jsonb,
    current_job_id   uuid,
    version          bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX printers_tenant_name ON printers (tenant_id, name);
CREATE UNIQUE INDEX printers_tenant_external ON printers (tenant_id, external_id);

-- Stock of pre-printed products: an immutable ledger and the level it adds up to.
CREATE TABLE stock_levels (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sku         text NOT NULL,
    quantity    integer NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);

CREATE TABLE stock_ledger (
    id                bigserial PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sku               text NOT NULL,
    transaction_type  text NOT NULL CHECK (transaction_type IN ('PRODUCED', 'CONSUMED', 'ADJUSTED', 'SCRAPPED')),
    direction         text NOT NULL CHECK (direction IN ('IN', 'OUT')),
    quantity          integer NOT NULL CHECK (quantity > 0),
    reason            text,
    message_id        uuid,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_ledger_tenant_sku ON stock_ledger (tenant_id, sku, created_at);
