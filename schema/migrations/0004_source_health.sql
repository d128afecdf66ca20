-- 0004_source_health: what the agent learnt of each source of a repository,
-- so that a run prefers the sources that served well before. Documented in
-- schema/database.md.
CREATE TABLE source_health (
  repo_id            INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
  source             TEXT    NOT NULL,
  requests           INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
  errors             INTEGER NOT NULL DEFAULT 0 CHECK (errors >= 0),
  bytes              INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
  consecutive_errors INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_errors >= 0),
  latency_ms         INTEGER,
  throughput_bps     INTEGER,
  last_error         TEXT,
  last_error_at_ms   INTEGER,
  last_ok_at_ms      INTEGER,
  updated_at_ms      INTEGER NOT NULL,
  PRIMARY KEY (repo_id, source)
) STRICT, WITHOUT ROWID;
