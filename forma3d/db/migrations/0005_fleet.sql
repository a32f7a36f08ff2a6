-- Printer fleet and smart dispatch: the farm's printer id, what the sync last saw, a held
-- (paused) flag on queued jobs, and the two guarantees dispatch rests on, in the schema itself.

ALTER TABLE printers
    ADD COLUMN farm_printer_id   bigint,
    ADD COLUMN farm_job_uid      text,
    ADD COLUMN auto_ready        boolean NOT NULL DEFAULT false,
    ADD COLUMN state_changed_at  timestamptz,
    ADD COLUMN last_seen_at      timestamptz,
    ADD COLUMN offline_since     timestamptz;
CREATE UNIQUE INDEX printers_tenant_farm ON printers (tenant_id, farm_printer_id);

ALTER TABLE print_jobs
    ADD COLUMN held         boolean NOT NULL DEFAULT false,
    ADD COLUMN assigned_at  timestamptz;

-- No printer ever has two jobs on it: at most one ASSIGNED or PRINTING job per printer.
CREATE UNIQUE INDEX print_jobs_one_per_printer ON print_jobs (printer_id)
    WHERE status IN ('ASSIGNED', 'PRINTING') AND printer_id IS NOT NULL;

-- The smart queue: best first (priority, position, age) among dispatchable jobs.
CREATE INDEX print_jobs_smart_queue ON print_jobs (tenant_id, priority DESC, position, created_at)
    WHERE status = 'QUEUED' AND farm_queue_item_id IS NULL;
