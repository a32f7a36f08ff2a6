-- The audit trail (append-only) and outgoing webhooks: subscriptions and their deliveries.

-- Who did what through the API, and security events. No foreign key to tenants: the trail
-- outlives what it records. Rows are never changed or removed (the trigger below).
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    tenant_id       uuid,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    category        text NOT NULL CHECK (category IN ('write', 'security', 'system')),
    action          text NOT NULL,
    actor_kind      text NOT NULL,
    actor_id        text,
    actor_name      text,
    method          text,
    route           text,
    target_id       text,
    status          integer,
    command         jsonb,
    before          jsonb,
    after           jsonb,
    request_id      text,
    client_address  text
);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant_id, occurred_at);
CREATE INDEX audit_log_tenant_request ON audit_log (tenant_id, request_id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- A tenant's outgoing webhook endpoint: the events it wants, its secret sealed at rest
-- (forma3d.platform.secrets), and how it has been failing (for the disable rule).
CREATE TABLE webhook_subscriptions (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url                   text NOT NULL,
    description           text,
    event_types           text[] NOT NULL,
    enabled               boolean NOT NULL DEFAULT true,
    secret                bytea NOT NULL,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    failing_since         timestamptz,
    disabled_reason       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_enabled ON webhook_subscriptions (tenant_id) WHERE enabled;

-- One event for one subscription, written in the transaction that records the event; sent in
-- order per (subscription, subject) by the dispatcher's webhook loop, at least once.
CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    delivery_id      uuid NOT NULL UNIQUE,
    tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    subject          text NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'PENDING'
                         CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_until    timestamptz,
    last_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    redelivery_of    uuid,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_chain ON webhook_deliveries (subscription_id, subject, id)
    WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_history ON webhook_deliveries (subscription_id, created_at);
