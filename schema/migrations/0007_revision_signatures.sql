-- 0007_revision_signatures: signed revisions (schema/signature_format.md).
-- Documented in schema/database.md.

-- The revision's signature document exactly as the source served it
-- ("revisions/<revision>.sig"), so that a node can hand it on unchanged;
-- NULL when the source had none or its kind carries none.
ALTER TABLE revisions ADD COLUMN signatures TEXT;
-- The trusted key whose signature verified when the revision was fetched;
-- NULL when no signature was checked (no trusted_keys, or none required).
ALTER TABLE revisions ADD COLUMN signed_by TEXT;
