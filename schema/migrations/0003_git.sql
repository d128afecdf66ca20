-- 0003_git: what a revision taken from a git remote was in git. Documented
-- in schema/database.md. NULL for revisions from published manifests that
-- say nothing about git.

-- The commit (also the revision id) and its tree.
ALTER TABLE revisions ADD COLUMN git_commit TEXT;
ALTER TABLE revisions ADD COLUMN git_tree TEXT;

-- The blob the commit's tree holds at the path, and for a Git LFS file the
-- object id (the content's sha256) its pointer names.
ALTER TABLE files ADD COLUMN git_blob TEXT;
ALTER TABLE files ADD COLUMN git_lfs_oid TEXT;
