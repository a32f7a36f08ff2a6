-- Orders as a live store sends them: payment, operator holds, manual orders, skipped and edited
-- line items, refunds, and jobs withdrawn by an edit or a refund.

-- Shopify's financial_status as last seen (NULL: not given, treated as paid); an operator's hold
-- (its reason, NULL when not held); where the order came from, and a manual order's own
-- reference (unique per tenant, so a retried POST creates nothing twice). A manual order has no
-- Shopify id.
ALTER TABLE orders
    ADD COLUMN financial_status text,
    ADD COLUMN hold_reason text,
    ADD COLUMN source text NOT NULL DEFAULT 'shopify' CHECK (source IN ('shopify', 'manual')),
    ADD COLUMN reference text,
    ALTER COLUMN shopify_order_id DROP NOT NULL;
CREATE UNIQUE INDEX orders_tenant_reference ON orders (tenant_id, reference)
    WHERE reference IS NOT NULL;

-- `quantity` is what we make; `ordered_quantity` what the customer first bought (Shopify's
-- `quantity`), `refunded_quantity` the units refunded so far.
ALTER TABLE line_items
    ADD COLUMN requires_shipping boolean NOT NULL DEFAULT true,
    ADD COLUMN ordered_quantity integer CHECK (ordered_quantity > 0),
    ADD COLUMN refunded_quantity integer NOT NULL DEFAULT 0 CHECK (refunded_quantity >= 0);

-- A job cancelled because its unit was edited away or refunded: it no longer counts towards its
-- line item (a cancelled job otherwise means a part is missing).
ALTER TABLE print_jobs ADD COLUMN withdrawn boolean NOT NULL DEFAULT false;

-- Shopify refunds applied to an order, once each.
CREATE TABLE order_refunds (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    refund_id   bigint NOT NULL,
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, refund_id)
);
