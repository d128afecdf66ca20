-- 0009_reserved: a placeholder so that this branch's 0010 applies in
-- order. The lead's 0009 (sync_runs.checks) replaces this file when the
-- branches are merged; it changes nothing.
SELECT 1;
