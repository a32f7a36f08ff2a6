-- GridFlock: custom baseplates. A GRID-CUSTOM line item keeps the canonical SKU it maps through
-- (its own SKU is the shop's generic one); one pipeline job per tenant and canonical SKU, so
-- concurrent orders for the same new size share one run (single flight by unique key).
-- Numbered 0007: 0006 is taken by the fleet's wake-up migration.

ALTER TABLE line_items ADD COLUMN mapping_sku text;
CREATE INDEX line_items_tenant_mapping_sku ON line_items (tenant_id, mapping_sku, status)
    WHERE mapping_sku IS NOT NULL;

CREATE TABLE gridflock_jobs (
    id                uuid PRIMARY KEY,
    tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    sku               text NOT NULL,
    printer_profile   text NOT NULL,
    status            text NOT NULL DEFAULT 'PENDING',
    failed_step       text,
    error             text,
    attempts          integer NOT NULL DEFAULT 0,
    plan              jsonb NOT NULL,
    plates            jsonb NOT NULL DEFAULT '[]'::jsonb,
    stl_runs          integer NOT NULL DEFAULT 0,
    slice_runs        integer NOT NULL DEFAULT 0,
    mapping_id        uuid REFERENCES product_mappings (id) ON DELETE SET NULL,
    started_at        timestamptz,
    completed_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, sku)
);
CREATE INDEX gridflock_jobs_tenant_status ON gridflock_jobs (tenant_id, status, created_at);
CREATE INDEX gridflock_jobs_tenant_created ON gridflock_jobs (tenant_id, created_at);
