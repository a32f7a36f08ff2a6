-- Which farm printer a job runs on (SimplyPrint's numeric id), so a cancellation can stop it.
ALTER TABLE print_jobs ADD COLUMN farm_printer_id bigint;
