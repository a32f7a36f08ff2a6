-- Outbox dead letters (messages refused for good: done, with the refusal as last_error) are
-- listed per tenant and counted for the metrics without scanning every delivered message.
CREATE INDEX outbox_dead_letters ON outbox (tenant_id, done_at)
    WHERE done_at IS NOT NULL AND last_error IS NOT NULL;
