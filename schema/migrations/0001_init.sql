-- 0001_init: the first schema of the sync-agent state database.
-- Documented in schema/database.md. Timestamps are Unix milliseconds (UTC);
-- optional values are NULL when absent. Applied in one transaction.

-- One row per repository ("org/name") the node has ever synced or polled.
CREATE TABLE repos (
  id            INTEGER PRIMARY KEY,
  name          TEXT    NOT NULL UNIQUE,
  created_at_ms INTEGER NOT NULL
) STRICT;

-- Every revision of a repository the node has recorded, and where it stands.
CREATE TABLE revisions (
  id              INTEGER PRIMARY KEY,
  repo_id         INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
  revision        TEXT    NOT NULL,
  manifest_sha256 TEXT    NOT NULL,
  source          TEXT    NOT NULL,
  created         TEXT    NOT NULL,
  state           TEXT    NOT NULL
                  CHECK (state IN ('staged', 'active', 'retained', 'collected')),
  fetched_at_ms   INTEGER NOT NULL,
  activated_at_ms INTEGER,
  file_count      INTEGER NOT NULL CHECK (file_count >= 0),
  total_bytes     INTEGER NOT NULL CHECK (total_bytes >= 0),
  UNIQUE (repo_id, revision)
) STRICT;

-- At most one active revision per repository.
CREATE UNIQUE INDEX revisions_one_active ON revisions (repo_id) WHERE state = 'active';

-- Every file version of every recorded revision, as its manifest lists it.
CREATE TABLE files (
  revision_id INTEGER NOT NULL REFERENCES revisions (id) ON DELETE CASCADE,
  path        TEXT    NOT NULL,
  size        INTEGER NOT NULL CHECK (size >= 0),
  mode        INTEGER NOT NULL,
  sha256      TEXT    NOT NULL,
  xxh3_128    TEXT    NOT NULL,
  PRIMARY KEY (revision_id, path)
) STRICT, WITHOUT ROWID;

-- Which revisions use a given content (reuse across revisions, garbage collection).
CREATE INDEX files_by_sha256 ON files (sha256);

-- The node's object store: content present on disk, by sha256.
CREATE TABLE objects (
  sha256       TEXT    PRIMARY KEY,
  xxh3_128     TEXT    NOT NULL,
  size         INTEGER NOT NULL CHECK (size >= 0),
  stored_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per sync run: when, why, what it did and how it ended.
CREATE TABLE sync_runs (
  id               INTEGER PRIMARY KEY,
  repo_id          INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
  trigger          TEXT    NOT NULL,
  started_at_ms    INTEGER NOT NULL,
  finished_at_ms   INTEGER,
  outcome          TEXT    NOT NULL
                   CHECK (outcome IN ('running', 'unchanged', 'updated', 'failed', 'interrupted')),
  from_revision    TEXT,
  to_revision      TEXT,
  source           TEXT,
  bytes_downloaded INTEGER NOT NULL DEFAULT 0,
  bytes_reused     INTEGER NOT NULL DEFAULT 0,
  files_downloaded INTEGER NOT NULL DEFAULT 0,
  files_reused     INTEGER NOT NULL DEFAULT 0,
  error            TEXT
) STRICT;

CREATE INDEX sync_runs_by_repo ON sync_runs (repo_id, id);
CREATE INDEX sync_runs_running ON sync_runs (outcome) WHERE outcome = 'running';

-- Downloads that stopped part way and can be resumed with a range request.
CREATE TABLE partial_transfers (
  sha256         TEXT    PRIMARY KEY,
  url            TEXT    NOT NULL,
  size           INTEGER NOT NULL CHECK (size >= 0),
  bytes_received INTEGER NOT NULL CHECK (bytes_received >= 0),
  updated_at_ms  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- What the last poll of each (repository, source) saw, for conditional requests.
CREATE TABLE poll_state (
  repo_id        INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
  source         TEXT    NOT NULL,
  etag           TEXT,
  last_modified  TEXT,
  revision       TEXT,
  pointer_sha256 TEXT,
  checked_at_ms  INTEGER NOT NULL,
  PRIMARY KEY (repo_id, source)
) STRICT, WITHOUT ROWID;
