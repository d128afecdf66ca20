-- 0008_verifications: what `sync-agent verify` found, per repository and run.
-- Documented in schema/database.md.
CREATE TABLE verifications (
  id             INTEGER PRIMARY KEY,
  repo           TEXT    NOT NULL,          -- org/name as served; "" for the object store as a whole
  started_at_ms  INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL,
  full           INTEGER NOT NULL CHECK (full IN (0, 1)),  -- 1: sha256; 0: size and xxh3
  files_checked  INTEGER NOT NULL,
  bytes_hashed   INTEGER NOT NULL,
  missing        INTEGER NOT NULL,
  damaged        INTEGER NOT NULL,
  unexpected     INTEGER NOT NULL,
  repaired       INTEGER NOT NULL,          -- problems repaired by --repair
  problems       TEXT                       -- the first problems found, one per line; NULL for none
) STRICT;
CREATE INDEX verifications_by_repo ON verifications (repo, finished_at_ms);
