-- The order flow: integrations, raw webhook inbox, print files, product mappings, orders, line
-- items, print jobs and shipments. Tenant-owned throughout; indexes start with tenant_id.

-- Per-tenant credentials for Shopify / SimplyPrint / Sendcloud; secrets encrypted at rest.
CREATE TABLE integrations (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    service     text NOT NULL CHECK (service IN ('shopify', 'simplyprint', 'sendcloud')),
    config      jsonb NOT NULL DEFAULT '{}'::jsonb,
    secrets     bytea,
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, service)
);

-- Every verified inbound webhook, raw, unique per delivery: replays insert nothing.
CREATE TABLE webhook_inbox (
    id            bigserial PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source        text NOT NULL,
    delivery_key  text NOT NULL,
    topic         text NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
    body          bytea NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    error         text,
    UNIQUE (tenant_id, source, delivery_key)
);
CREATE INDEX webhook_inbox_tenant_time ON webhook_inbox (tenant_id, received_at);

-- Printable files, stored once per tenant by content hash, uploaded to the farm once.
CREATE TABLE print_files (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    filename            text NOT NULL,
    content_hash        text NOT NULL,
    size_bytes          bigint NOT NULL,
    content             bytea NOT NULL,
    estimated_seconds   integer,
    grams               numeric(10, 2),
    farm_file_id        text,
    farm_uploaded_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, content_hash)
);

CREATE TABLE product_mappings (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sku         text NOT NULL,
    variant_id  text NOT NULL DEFAULT '',
    name        text NOT NULL,
    packaging_grams  numeric(10, 2) NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sku, variant_id)
);

CREATE TABLE mapping_parts (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mapping_id     uuid NOT NULL REFERENCES product_mappings (id) ON DELETE CASCADE,
    name           text NOT NULL,
    file_id        uuid NOT NULL REFERENCES print_files (id),
    quantity       integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    print_profile  text,
    grams          numeric(10, 2) NOT NULL DEFAULT 0,
    required_tags  text[] NOT NULL DEFAULT '{}',
    position       integer NOT NULL DEFAULT 0
);
CREATE INDEX mapping_parts_tenant_mapping ON mapping_parts (tenant_id, mapping_id, position);

CREATE TABLE orders (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    shopify_order_id    bigint NOT NULL,
    name                text NOT NULL,
    email               text,
    status              text NOT NULL DEFAULT 'PENDING',
    reason              text,
    currency            text,
    total_price         numeric(12, 2),
    shipping_address    jsonb,
    shopify_created_at  timestamptz,
    shopify_updated_at  timestamptz,
    parts_total         integer NOT NULL DEFAULT 0,
    parts_completed     integer NOT NULL DEFAULT 0,
    received_at         timestamptz NOT NULL DEFAULT now(),
    queued_at           timestamptz,
    ready_at            timestamptz,
    fulfilled_at        timestamptz,
    cancelled_at        timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, shopify_order_id)
);
CREATE INDEX orders_tenant_status ON orders (tenant_id, status, created_at);
CREATE INDEX orders_tenant_created ON orders (tenant_id, created_at);

CREATE TABLE line_items (
    id                     uuid PRIMARY KEY,
    tenant_id              uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id               uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    shopify_line_item_id   bigint NOT NULL,
    sku                    text,
    variant_id             text,
    title                  text NOT NULL DEFAULT '',
    quantity               integer NOT NULL CHECK (quantity > 0),
    properties             jsonb NOT NULL DEFAULT '{}'::jsonb,
    mapping_id             uuid REFERENCES product_mappings (id),
    status                 text NOT NULL DEFAULT 'PENDING',
    reason                 text,
    parts_total            integer NOT NULL DEFAULT 0,
    parts_completed        integer NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, order_id, shopify_line_item_id)
);
CREATE INDEX line_items_tenant_sku ON line_items (tenant_id, sku, status);

CREATE TABLE print_jobs (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_key            text NOT NULL,
    purpose            text NOT NULL DEFAULT 'ORDER',
    order_id           uuid REFERENCES orders (id) ON DELETE CASCADE,
    line_item_id       uuid REFERENCES line_items (id) ON DELETE CASCADE,
    part_id            uuid REFERENCES mapping_parts (id) ON DELETE SET NULL,
    copy_number        integer NOT NULL,
    file_id            uuid NOT NULL REFERENCES print_files (id),
    status             text NOT NULL DEFAULT 'PENDING',
    priority           integer NOT NULL DEFAULT 0,
    position           bigint NOT NULL DEFAULT 0,
    required_tags      text[] NOT NULL DEFAULT '{}',
    attempts           integer NOT NULL DEFAULT 0,
    max_attempts       integer NOT NULL DEFAULT 3,
    farm_queue_item_id bigint,
    farm_job_uid       text,
    farm_job_id        bigint,
    printer_id         uuid REFERENCES printers (id) ON DELETE SET NULL,
    error              text,
    status_at          timestamptz,
    queued_at          timestamptz,
    started_at         timestamptz,
    completed_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, job_key)
);
CREATE INDEX print_jobs_tenant_order ON print_jobs (tenant_id, order_id);
CREATE INDEX print_jobs_tenant_status ON print_jobs (tenant_id, status, priority DESC, position);
CREATE INDEX print_jobs_tenant_queue_item ON print_jobs (tenant_id, farm_queue_item_id);
CREATE INDEX print_jobs_tenant_job_uid ON print_jobs (tenant_id, farm_job_uid);

CREATE TABLE shipments (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    order_id             uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status               text NOT NULL DEFAULT 'PENDING',
    external_reference   text NOT NULL,
    parcel_id            bigint,
    carrier              text,
    tracking_number      text,
    tracking_url         text,
    weight_kg            numeric(8, 3),
    label                bytea,
    carrier_status_id    integer,
    carrier_status       text,
    status_at            timestamptz,
    shopify_fulfillment_id  bigint,
    error                text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, order_id),
    UNIQUE (tenant_id, external_reference)
);
CREATE INDEX shipments_tenant_parcel ON shipments (tenant_id, parcel_id);
