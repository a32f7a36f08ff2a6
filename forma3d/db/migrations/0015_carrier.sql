-- Shipments as a carrier sees them (issue 9, section 5).
-- The checkout's delivery choice (rate code and title, service point, post number) per order.
ALTER TABLE orders ADD COLUMN delivery jsonb;

-- A product's box (length, width, height in cm): the parcel takes the largest of an order's.
ALTER TABLE product_mappings
    ADD COLUMN packaging_cm numeric(7, 2)[]
        CHECK (packaging_cm IS NULL OR (cardinality(packaging_cm) = 3
               AND 0 < ALL (packaging_cm)));

ALTER TABLE shipments
    ADD COLUMN shipping_method  text,     -- the Sendcloud method it was created with
    ADD COLUMN service_point_id text,     -- the pickup point it goes to, when one was chosen
    ADD COLUMN create_failures  integer NOT NULL DEFAULT 0,  -- transient failures in a row
    ADD COLUMN shopify_tracking_number text,   -- what Shopify's fulfilment last got
    ADD COLUMN shopify_shipment_status text,   -- the last fulfilment event Shopify got
    ADD COLUMN checked_at       timestamptz;   -- last reconciliation against Sendcloud

-- Reconciliation reads the open parcels of a tenant.
CREATE INDEX shipments_open ON shipments (tenant_id, checked_at)
    WHERE parcel_id IS NOT NULL
      AND status IN ('LABEL_CREATED', 'ANNOUNCED', 'IN_TRANSIT', 'EXCEPTION', 'CANCEL_REQUESTED');
