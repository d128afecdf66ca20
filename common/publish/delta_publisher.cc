#include "common/publish/delta_publisher.h"

#include <unistd.h>

#include <unordered_map>

#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"

namespace sync_agent {
namespace {

// Streams whatever a generator produces into path, durably, hashing it.
// On failure nothing is left at path.
template <typename Generate>
Result<ContentDigest> WriteGenerated(Env* env, const std::string& path, Generate generate) {
  SA_RETURN_IF_ERROR(CreateDirs(env, DirName(path), 0755));
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  ContentHasher hasher;
  Status s = [&]() -> Status {
    SA_ASSIGN_OR_RETURN(auto out, env->NewWritableFile(tmp, 0644));
    SA_RETURN_IF_ERROR(generate([&](const char* data, size_t n) -> Status {
      hasher.Update(data, n);
      return out->Append(data, n);
    }));
    SA_RETURN_IF_ERROR(out->Sync());
    SA_RETURN_IF_ERROR(out->Close());
    SA_RETURN_IF_ERROR(env->Chmod(tmp, 0644));
    SA_RETURN_IF_ERROR(env->Rename(tmp, path));
    return env->SyncDir(DirName(path));  // durable before a manifest names it
  }();
  if (!s.ok()) {
    env->RemoveFile(tmp);
    return s;
  }
  return hasher.Finish();
}

// The digest of an existing file, or kNotFound.
Result<ContentDigest> ExistingDigest(Env* env, const std::string& path) {
  if (!FileExists(env, path)) return Status::NotFound(path);
  return HashFile(env, path);
}

}  // namespace

Status AddDeltaInfo(Env* env, const std::string& repo_dir, const std::vector<Manifest>& previous,
                    const DeltaPublishOptions& options, Manifest* manifest,
                    DeltaPublishStats* stats) {
  // path -> earlier entries of that path, newest first.
  std::unordered_map<std::string, std::vector<const ManifestEntry*>> history;
  for (size_t i = 0; i < previous.size() && static_cast<int>(i) < options.delta_depth; ++i) {
    for (const ManifestEntry& e : previous[i].files) history[e.path].push_back(&e);
  }
  for (ManifestEntry& e : manifest->files) {
    if (e.size < options.signature_min_size) continue;
    std::string object = JoinPath(repo_dir, PublishedObjectPath(e.sha256));

    SignatureParams params = ChooseSignatureParams(e.size);
    std::string sig_path = JoinPath(repo_dir, PublishedSignaturePath(e.sha256, params.block_len));
    auto sig_digest = ExistingDigest(env, sig_path);
    if (!sig_digest.ok()) {
      if (!sig_digest.status().IsNotFound()) return sig_digest.status();
      sig_digest = WriteGenerated(env, sig_path, [&](const ByteSink& sink) -> Status {
        SA_ASSIGN_OR_RETURN(auto in, env->NewSequentialFile(object));
        return ComputeSignature(in.get(), params, sink);
      });
      if (!sig_digest.ok()) return sig_digest.status().WithContext("signature of " + e.path);
      stats->signatures_written++;
      stats->bytes_written += sig_digest->size;
    }
    e.signature = {params.block_len, params.strong_len, sig_digest->size, sig_digest->sha256};

    auto it = history.find(e.path);
    if (it == history.end()) continue;
    for (const ManifestEntry* old : it->second) {
      if (old->sha256 == e.sha256) continue;
      bool listed = false;
      for (const DeltaRef& d : e.deltas) listed = listed || d.from_sha256 == old->sha256;
      if (listed) continue;
      std::string delta_path = JoinPath(repo_dir, PublishedDeltaPath(old->sha256, e.sha256));
      auto delta_digest = ExistingDigest(env, delta_path);
      if (!delta_digest.ok()) {
        if (!delta_digest.status().IsNotFound()) return delta_digest.status();
        // The basis signature: published with the old revision, or made now.
        std::string old_object = JoinPath(repo_dir, PublishedObjectPath(old->sha256));
        std::string sig_bytes;
        if (old->signature.present()) {
          auto bytes = ReadFileToString(
              env,
              JoinPath(repo_dir, PublishedSignaturePath(old->sha256, old->signature.block_len)),
              1ULL << 30);
          if (bytes.ok()) sig_bytes = std::move(bytes).value();
        }
        if (sig_bytes.empty()) {
          auto in = env->NewSequentialFile(old_object);
          if (!in.ok()) continue;  // the old object is gone from the origin: no delta
          SA_RETURN_IF_ERROR(ComputeSignature(in->get(), ChooseSignatureParams(old->size),
                                              [&](const char* d, size_t n) {
                                                sig_bytes.append(d, n);
                                                return Status::OK();
                                              }));
        }
        SA_ASSIGN_OR_RETURN(Signature basis, Signature::Load(sig_bytes));
        delta_digest = WriteGenerated(env, delta_path, [&](const ByteSink& sink) -> Status {
          SA_ASSIGN_OR_RETURN(auto in, env->NewSequentialFile(object));
          return ComputeDelta(basis, in.get(), sink);
        });
        if (!delta_digest.ok()) return delta_digest.status().WithContext("delta of " + e.path);
        if (delta_digest->size >= e.size) {
          // No cheaper than the file itself: not worth publishing.
          env->RemoveFile(delta_path);
          stats->deltas_skipped++;
          continue;
        }
        stats->deltas_written++;
        stats->bytes_written += delta_digest->size;
      } else if (delta_digest->size >= e.size) {
        continue;
      }
      e.deltas.push_back({old->sha256, delta_digest->size, delta_digest->sha256});
    }
  }
  return Status::OK();
}

}  // namespace sync_agent
