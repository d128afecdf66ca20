-- 0010_org_follows: which repositories each organisation glob ([[repo]]
-- name = "ORG/*") follows, and how its last discovery went.
-- Documented in schema/database.md.
CREATE TABLE org_follows (
  glob           TEXT PRIMARY KEY,          -- "ORG/*", or "datasets/ORG/*" for a hub's datasets
  listing_url    TEXT    NOT NULL,          -- what the last discovery asked (or tried first)
  checked_at_ms  INTEGER NOT NULL,          -- when it last ran
  ok_at_ms       INTEGER,                   -- when it last succeeded; NULL: never
  error          TEXT                       -- why the last discovery failed; NULL when it answered
) STRICT;
CREATE TABLE org_repos (
  glob             TEXT    NOT NULL REFERENCES org_follows (glob) ON DELETE CASCADE,
  repo             TEXT    NOT NULL,        -- as served: "ORG/NAME" or "datasets/ORG/NAME"
  name             TEXT    NOT NULL,        -- "ORG/NAME" as the origin lists it
  first_seen_ms    INTEGER NOT NULL,
  missing_since_ms INTEGER,                 -- NULL while the origin lists it
  PRIMARY KEY (glob, repo)
) STRICT;
