// Tampering with a published repository the way a broken or compromised
// origin, or a corrupting cache, would: replacing a signature or delta and,
// if asked, making the manifest and pointer agree with the replacement so
// that it passes the hash checks and reaches the parsers.
#pragma once

#include <functional>
#include <string>

namespace sync_agent::testing {

// Edits the manifest the pointer "<repo_dir>/latest" names and writes the
// pointer again with the new manifest's sha256, its mtime moved 30 s past
// the old one (nginx's ETag is mtime-size). Returns "" or what went wrong.
std::string RewriteLatestManifest(const std::string& repo_dir,
                                  const std::function<std::string(std::string)>& edit);

// Replaces the published file "<repo_dir>/<rel>" with bytes. With
// fix_manifest, the latest manifest's size and sha256 of that file are
// updated to match. Returns "" or what went wrong.
std::string ReplacePublishedFile(const std::string& repo_dir, const std::string& rel,
                                 const std::string& bytes, bool fix_manifest);

// Paths of published signatures and deltas, as the publisher names them.
std::string SignatureRelPath(const std::string& content, uint32_t block_len);
std::string DeltaRelPath(const std::string& from_content, const std::string& to_content);

}  // namespace sync_agent::testing
