-- 0006_hub_view: how the node names each revision and file when it serves
-- them through the Hugging Face Hub API (common/serve/hub_api.h), computed
-- once at sync and never per request. Documented in schema/database.md.

-- 40 lowercase hex digits: the commit id of a revision taken from git or a
-- hub, else the first 40 hex digits of its manifest's sha256 (stable).
ALTER TABLE revisions ADD COLUMN hub_sha TEXT;
CREATE INDEX revisions_by_hub_sha ON revisions (hub_sha) WHERE hub_sha IS NOT NULL;

-- The git blob id the Hub API gives the file ("oid"), and whether it shows
-- it as a Git LFS file (hub_oid is then its pointer's blob id; the LFS oid is
-- the sha256).
ALTER TABLE files ADD COLUMN hub_oid TEXT;
ALTER TABLE files ADD COLUMN hub_lfs INTEGER CHECK (hub_lfs IN (0, 1));
