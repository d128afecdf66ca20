// StateDb's organisation globs (schema 0010): which repositories each
// [[repo]] "ORG/*" follows and how its last discovery went, and the removal
// of a repository that prune_missing gives up.
#include <set>

#include "common/db/sqlite.h"
#include "common/db/state_db.h"

namespace sync_agent {

Result<std::vector<OrgFollowRow>> StateDb::OrgFollows() {
  SA_ASSIGN_OR_RETURN(SqliteStatement stmt,
                      db_->Prepare("SELECT glob, listing_url, checked_at_ms, ok_at_ms, error "
                                   "FROM org_follows ORDER BY glob"));
  std::vector<OrgFollowRow> rows;
  while (true) {
    SA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) return rows;
    OrgFollowRow r;
    r.glob = stmt.ColumnText(0);
    r.listing_url = stmt.ColumnText(1);
    r.checked_at_ms = stmt.ColumnInt64(2);
    r.ok_at_ms = stmt.ColumnInt64(3);
    r.error = stmt.ColumnText(4);
    rows.push_back(std::move(r));
  }
}

Result<std::vector<OrgRepoRow>> StateDb::OrgRepos() {
  SA_ASSIGN_OR_RETURN(SqliteStatement stmt,
                      db_->Prepare("SELECT glob, repo, name, first_seen_ms, missing_since_ms "
                                   "FROM org_repos ORDER BY glob, repo"));
  std::vector<OrgRepoRow> rows;
  while (true) {
    SA_ASSIGN_OR_RETURN(bool has_row, stmt.Step());
    if (!has_row) return rows;
    OrgRepoRow r;
    r.glob = stmt.ColumnText(0);
    r.repo = stmt.ColumnText(1);
    r.name = stmt.ColumnText(2);
    r.first_seen_ms = stmt.ColumnInt64(3);
    r.missing_since_ms = stmt.ColumnInt64(4);
    rows.push_back(std::move(r));
  }
}

Status StateDb::SaveOrgDiscovery(const OrgFollowRow& follow, const std::vector<OrgRepoRow>* repos) {
  SA_ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_.get()));
  {
    SA_ASSIGN_OR_RETURN(
        SqliteStatement stmt,
        db_->Prepare("INSERT INTO org_follows (glob, listing_url, checked_at_ms, ok_at_ms, error) "
                     "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (glob) DO UPDATE SET "
                     "listing_url = excluded.listing_url, checked_at_ms = excluded.checked_at_ms, "
                     "ok_at_ms = COALESCE(excluded.ok_at_ms, org_follows.ok_at_ms), "
                     "error = excluded.error"));
    SA_RETURN_IF_ERROR(stmt.BindText(1, follow.glob));
    SA_RETURN_IF_ERROR(stmt.BindText(2, follow.listing_url));
    SA_RETURN_IF_ERROR(stmt.BindInt64(3, follow.checked_at_ms));
    SA_RETURN_IF_ERROR(stmt.BindInt64OrNull(4, follow.error.empty() ? follow.ok_at_ms : 0));
    SA_RETURN_IF_ERROR(stmt.BindTextOrNull(5, follow.error));
    SA_RETURN_IF_ERROR(stmt.Run());
  }
  if (repos != nullptr) {
    SA_ASSIGN_OR_RETURN(SqliteStatement del, db_->Prepare("DELETE FROM org_repos WHERE glob = ?1"));
    SA_RETURN_IF_ERROR(del.BindText(1, follow.glob));
    SA_RETURN_IF_ERROR(del.Run());
    SA_ASSIGN_OR_RETURN(
        SqliteStatement ins,
        db_->Prepare("INSERT INTO org_repos (glob, repo, name, first_seen_ms, missing_since_ms) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)"));
    for (const OrgRepoRow& r : *repos) {
      ins.Reset();
      SA_RETURN_IF_ERROR(ins.BindText(1, follow.glob));
      SA_RETURN_IF_ERROR(ins.BindText(2, r.repo));
      SA_RETURN_IF_ERROR(ins.BindText(3, r.name));
      SA_RETURN_IF_ERROR(ins.BindInt64(4, r.first_seen_ms));
      SA_RETURN_IF_ERROR(ins.BindInt64OrNull(5, r.missing_since_ms));
      SA_RETURN_IF_ERROR(ins.Run());
    }
  }
  return txn.Commit();
}

Status StateDb::ForgetOrgFollowsExcept(const std::vector<std::string>& globs) {
  SA_ASSIGN_OR_RETURN(auto known, OrgFollows());
  const std::set<std::string> keep(globs.begin(), globs.end());
  SA_ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_.get()));
  SA_ASSIGN_OR_RETURN(SqliteStatement del, db_->Prepare("DELETE FROM org_follows WHERE glob = ?1"));
  for (const OrgFollowRow& r : known) {
    if (keep.count(r.glob)) continue;
    del.Reset();
    SA_RETURN_IF_ERROR(del.BindText(1, r.glob));
    SA_RETURN_IF_ERROR(del.Run());
  }
  return txn.Commit();
}

Status StateDb::DeleteRepo(const std::string& name) {
  SA_ASSIGN_OR_RETURN(SqliteTransaction txn, SqliteTransaction::Begin(db_.get()));
  // repos cascades to revisions, files, runs, run files, poll state and
  // source health; the tables keyed by name are cleared here.
  for (const char* sql :
       {"DELETE FROM repos WHERE name = ?1", "DELETE FROM verifications WHERE repo = ?1",
        "DELETE FROM org_repos WHERE repo = ?1"}) {
    SA_ASSIGN_OR_RETURN(SqliteStatement stmt, db_->Prepare(sql));
    SA_RETURN_IF_ERROR(stmt.BindText(1, name));
    SA_RETURN_IF_ERROR(stmt.Run());
  }
  return txn.Commit();
}

}  // namespace sync_agent
