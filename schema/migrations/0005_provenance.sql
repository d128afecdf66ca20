-- 0005_provenance: one generic record of where a revision or a file came
-- from, whatever the kind of source (a git remote, a hub), in place of the
-- git columns of 0003. Documented in schema/database.md. A JSON object of
-- strings (common/manifest/manifest.h, Provenance); NULL when the source said
-- nothing beyond the manifest. Existing git ids are carried over.

ALTER TABLE revisions ADD COLUMN provenance TEXT CHECK (provenance IS NULL OR json_valid(provenance));
UPDATE revisions
   SET provenance = json_object('kind', 'git', 'commit', git_commit, 'tree', git_tree)
 WHERE git_commit IS NOT NULL;
ALTER TABLE revisions DROP COLUMN git_commit;
ALTER TABLE revisions DROP COLUMN git_tree;

ALTER TABLE files ADD COLUMN provenance TEXT CHECK (provenance IS NULL OR json_valid(provenance));
UPDATE files
   SET provenance = CASE WHEN git_lfs_oid IS NOT NULL
                         THEN json_object('blob', git_blob, 'lfs', 'true')
                         ELSE json_object('blob', git_blob) END
 WHERE git_blob IS NOT NULL;
ALTER TABLE files DROP COLUMN git_blob;
ALTER TABLE files DROP COLUMN git_lfs_oid;

-- Contents the node holds, by the git blob id a revision listed them with:
-- a hub lists regular files by blob id only, and a file the node has is not
-- downloaded again to learn its sha256.
CREATE INDEX files_by_blob ON files (json_extract(provenance, '$.blob'))
  WHERE provenance IS NOT NULL;
