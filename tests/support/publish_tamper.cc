#include "tests/support/publish_tamper.h"

#include <chrono>
#include <filesystem>

#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {

std::string RewriteLatestManifest(const std::string& repo_dir,
                                  const std::function<std::string(std::string)>& edit) {
  const std::string latest = repo_dir + "/latest";
  std::string pointer = ReadFile(latest);
  const std::string key = "\"manifest\": \"";
  size_t at = pointer.find(key);
  if (at == std::string::npos) return "no manifest in pointer: " + pointer;
  size_t start = at + key.size();
  std::string manifest_path = repo_dir + "/" + pointer.substr(start, pointer.find('"', start) - start);
  std::string old_text = ReadFile(manifest_path);
  std::string new_text = edit(old_text);
  if (new_text == old_text) return "the edit changed nothing";
  WriteFile(manifest_path, new_text);
  std::string old_sha = Sha256Hex(old_text);
  size_t p = pointer.find(old_sha);
  if (p == std::string::npos) return "the pointer does not name the manifest's sha256";
  pointer.replace(p, old_sha.size(), Sha256Hex(new_text));
  WriteFile(latest, pointer);
  namespace fs = std::filesystem;
  fs::last_write_time(latest, fs::last_write_time(latest) + std::chrono::seconds(30));
  return "";
}

std::string ReplacePublishedFile(const std::string& repo_dir, const std::string& rel,
                                 const std::string& bytes, bool fix_manifest) {
  const std::string path = repo_dir + "/" + rel;
  std::string old_bytes = ReadFile(path);
  if (old_bytes.empty()) return "nothing published at " + path;
  WriteFile(path, bytes);
  if (!fix_manifest) return "";
  std::string error;
  std::string result = RewriteLatestManifest(repo_dir, [&](std::string m) {
    // Manifests write a signature or delta as {..., "size": N, "sha256": "..."}.
    std::string from = "\"size\": " + std::to_string(old_bytes.size()) + ", \"sha256\": \"" +
                       Sha256Hex(old_bytes) + "\"";
    std::string to = "\"size\": " + std::to_string(bytes.size()) + ", \"sha256\": \"" +
                     Sha256Hex(bytes) + "\"";
    size_t at = m.find(from);
    if (at == std::string::npos) {
      error = "the manifest does not list " + rel;
      return m;
    }
    m.replace(at, from.size(), to);
    return m;
  });
  return error.empty() ? result : error;
}

std::string SignatureRelPath(const std::string& content, uint32_t block_len) {
  return PublishedSignaturePath(Sha256Hex(content), block_len);
}

std::string DeltaRelPath(const std::string& from_content, const std::string& to_content) {
  return PublishedDeltaPath(Sha256Hex(from_content), Sha256Hex(to_content));
}

}  // namespace sync_agent::testing
