-- Connections managed by API (issue 9): the last refusal of a connection's credentials, and the
-- last time they were proven, shown by GET /api/v1/integrations.
ALTER TABLE integrations
    ADD COLUMN last_error     text,
    ADD COLUMN last_error_at  timestamptz,
    ADD COLUMN last_ok_at     timestamptz;
