-- 0011_pins: repositories an operator pinned to a revision (`sync-agent pin`).
-- While a row exists, runs still poll and fetch, but serve only this revision.
-- Documented in schema/database.md.
CREATE TABLE pins (
  repo_id      INTEGER PRIMARY KEY REFERENCES repos (id) ON DELETE CASCADE,
  revision     TEXT    NOT NULL,
  pinned_at_ms INTEGER NOT NULL
) STRICT;
