// The organisation index of a publish root, "<root>/<org>/index.json"
// (schema/org_index.md): the repositories under <root>/<org>/ that have a
// `latest` pointer, for nodes that follow "<org>/*". `publish` rewrites it
// after each repository's pointer.
#pragma once

#include <string>

#include "common/base/status.h"

namespace sync_agent {

class Env;

// "org" of "org/name".
std::string OrgOf(const std::string& repo);

// Lists <out_root>/<org>/*/latest and writes the index atomically (temporary
// file, fsync, rename, fsync of the directory; mode 0644) while holding an
// flock on <out_root>/<org>/.index.lock, so that concurrent publishers of
// the organisation's repositories each write a complete index and the last
// one lists them all. A repository whose `latest` does not parse, or names
// another repository, is left out with a warning. On failure the previous
// index is untouched.
Status WriteOrgIndex(Env* env, const std::string& out_root, const std::string& org);

}  // namespace sync_agent
