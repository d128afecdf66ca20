-- 0009_run_checks: consecutive no-change checks of a repository share one
-- sync_runs row, so the table does not grow by a row per repository per pass.
-- Documented in schema/database.md.
ALTER TABLE sync_runs ADD COLUMN checks INTEGER NOT NULL DEFAULT 1 CHECK (checks >= 1);
ALTER TABLE sync_runs ADD COLUMN first_started_at_ms INTEGER;
