-- Inventory: stock per product mapping derived from an immutable ledger, stock batches of
-- STOCK-purpose print jobs. Replaces the per-SKU level that handlers overwrote (0001).

DROP TABLE stock_levels;
DROP TABLE stock_ledger;

-- What a tenant wants on the shelf for one product mapping; the quantities are the ledger's.
CREATE TABLE stock_items (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    mapping_id  uuid NOT NULL REFERENCES product_mappings (id) ON DELETE CASCADE,
    minimum     integer NOT NULL DEFAULT 0 CHECK (minimum >= 0),
    maximum     integer CHECK (maximum IS NULL OR maximum >= minimum),
    priority    integer NOT NULL DEFAULT 0,
    batch_size  integer NOT NULL DEFAULT 1 CHECK (batch_size >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, mapping_id)
);

-- Every movement, never edited. Each entry carries the balance it leads to, written under the
-- stock item's row lock, so the level is the last entry and the sum of all of them at once.
CREATE TABLE stock_ledger (
    id              bigserial PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    mapping_id      uuid NOT NULL,
    entry_type      text NOT NULL CHECK (entry_type IN ('PRODUCED', 'CONSUMED', 'RESERVED',
                        'RELEASED', 'ADJUSTED', 'SCRAPPED', 'RETURNED')),
    direction       text NOT NULL CHECK (direction IN ('IN', 'OUT')),
    quantity        integer NOT NULL CHECK (quantity > 0),
    on_hand_after   integer NOT NULL,
    reserved_after  integer NOT NULL,
    reference_type  text NOT NULL,
    reference_id    text,
    order_id        uuid,
    line_item_id    uuid,
    stock_batch_id  uuid,
    created_by      text,
    reason          text,
    message_id      uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (reserved_after >= 0 AND on_hand_after >= reserved_after),
    FOREIGN KEY (tenant_id, mapping_id) REFERENCES stock_items (tenant_id, mapping_id)
        ON DELETE CASCADE
);
CREATE INDEX stock_ledger_tenant_mapping ON stock_ledger (tenant_id, mapping_id, id DESC);
CREATE INDEX stock_ledger_tenant_line_item ON stock_ledger (tenant_id, line_item_id)
    WHERE line_item_id IS NOT NULL;
CREATE INDEX stock_ledger_tenant_created ON stock_ledger (tenant_id, created_at, id);

CREATE FUNCTION forma3d_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'stock_ledger entries are immutable; record a correcting entry';
END $$;
CREATE TRIGGER stock_ledger_immutable BEFORE UPDATE ON stock_ledger
    FOR EACH ROW EXECUTE FUNCTION forma3d_ledger_immutable();

CREATE TABLE stock_batches (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    mapping_id      uuid NOT NULL,
    units           integer NOT NULL CHECK (units > 0),
    status          text NOT NULL DEFAULT 'IN_PROGRESS',
    origin          text NOT NULL DEFAULT 'MANUAL' CHECK (origin IN ('MANUAL', 'REPLENISHMENT')),
    units_produced  integer,
    reason          text,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    cancelled_at    timestamptz,
    FOREIGN KEY (tenant_id, mapping_id) REFERENCES stock_items (tenant_id, mapping_id)
        ON DELETE CASCADE
);
CREATE INDEX stock_batches_tenant_status ON stock_batches (tenant_id, status, created_at);

ALTER TABLE print_jobs ADD COLUMN stock_batch_id uuid REFERENCES stock_batches (id)
    ON DELETE CASCADE;
CREATE INDEX print_jobs_tenant_batch ON print_jobs (tenant_id, stock_batch_id)
    WHERE stock_batch_id IS NOT NULL;

-- The smart queue puts order jobs before stock jobs (store.print_jobs.CANDIDATES); its index
-- follows, replacing the one of 0005.
DROP INDEX IF EXISTS print_jobs_smart_queue;
CREATE INDEX print_jobs_smart_queue ON print_jobs
    (tenant_id, (purpose = 'STOCK'), priority DESC, position, created_at)
    WHERE status = 'QUEUED' AND farm_queue_item_id IS NULL;

-- Levels for reads: settings, the last balance, and units being printed for stock.
CREATE VIEW stock_levels AS
SELECT s.tenant_id, s.mapping_id, m.sku, m.variant_id, m.name,
       coalesce(l.on_hand_after, 0) AS on_hand,
       coalesce(l.reserved_after, 0) AS reserved,
       coalesce(l.on_hand_after - l.reserved_after, 0) AS available,
       coalesce(b.units, 0)::integer AS in_production,
       s.minimum, s.maximum, s.priority, s.batch_size, s.created_at, s.updated_at
FROM stock_items s
JOIN product_mappings m ON m.id = s.mapping_id
LEFT JOIN LATERAL (SELECT on_hand_after, reserved_after FROM stock_ledger e
                   WHERE e.tenant_id = s.tenant_id AND e.mapping_id = s.mapping_id
                   ORDER BY e.id DESC LIMIT 1) l ON true
LEFT JOIN LATERAL (SELECT sum(units) AS units FROM stock_batches b
                   WHERE b.tenant_id = s.tenant_id AND b.mapping_id = s.mapping_id
                     AND b.status = 'IN_PROGRESS') b ON true;
