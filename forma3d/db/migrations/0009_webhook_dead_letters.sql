-- A stored webhook whose processing failed is a dead letter: visible, counted, retryable.
ALTER TABLE webhook_inbox
    ADD COLUMN dead_lettered_at timestamptz,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0;
CREATE INDEX webhook_inbox_dead_letters ON webhook_inbox (tenant_id, dead_lettered_at)
    WHERE dead_lettered_at IS NOT NULL;
