-- 0002_transfer_methods: how each file of a run was obtained, and what
-- block-level deltas saved. Documented in schema/database.md.

-- Per run: the bytes of content the run had to build (files not already in
-- the object store, each distinct content once), and how many of those bytes
-- came from content the node already had (copies of a published delta,
-- blocks matched against a signature) instead of the network.
ALTER TABLE sync_runs ADD COLUMN changed_bytes INTEGER NOT NULL DEFAULT 0
  CHECK (changed_bytes >= 0);
ALTER TABLE sync_runs ADD COLUMN changed_bytes_reused INTEGER NOT NULL DEFAULT 0
  CHECK (changed_bytes_reused >= 0);

-- One row per file of the revision a run synced (updated runs only).
--   reuse   content already in the object store (or fetched for another path
--           of the same run): nothing transferred
--   delta   a published librsync delta applied to basis_sha256
--   ranges  blocks of basis_sha256 matched against the published signature,
--           the rest fetched with HTTP range requests
--   whole   the whole file downloaded
-- bytes_fetched counts what crossed the network for the file (delta file,
-- signature, ranges, or the body); bytes_reused what came from local content.
-- note says why cheaper methods were not used, when one was tried or possible.
CREATE TABLE run_files (
  run_id        INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
  path          TEXT    NOT NULL,
  sha256        TEXT    NOT NULL,
  size          INTEGER NOT NULL CHECK (size >= 0),
  method        TEXT    NOT NULL CHECK (method IN ('reuse', 'delta', 'ranges', 'whole')),
  basis_sha256  TEXT,
  bytes_fetched INTEGER NOT NULL CHECK (bytes_fetched >= 0),
  bytes_reused  INTEGER NOT NULL CHECK (bytes_reused >= 0),
  note          TEXT,
  PRIMARY KEY (run_id, path)
) STRICT, WITHOUT ROWID;
