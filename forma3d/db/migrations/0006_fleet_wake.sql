-- Wake a tenant's ready printers when one of its jobs enters the smart queue (or is un-held).
-- NOTIFY is delivered on commit and deduplicated per transaction, so a burst is one wake-up.
CREATE FUNCTION forma3d_job_queued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'QUEUED' AND NEW.farm_queue_item_id IS NULL AND NOT NEW.held
       AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'QUEUED' OR OLD.held) THEN
        PERFORM pg_notify('forma3d_queue', NEW.tenant_id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER print_jobs_queued AFTER INSERT OR UPDATE OF status, held ON print_jobs
    FOR EACH ROW EXECUTE FUNCTION forma3d_job_queued();
