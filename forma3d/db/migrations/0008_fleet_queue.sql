-- "Clear finished" hides finished jobs from the queue view without deleting order history.
ALTER TABLE print_jobs ADD COLUMN cleared_at timestamptz;
