#include "tests/support/publish_root_generator.h"

#include <cstdio>
#include <memory>
#include <utility>

#include "common/fs/env.h"
#include "common/publish/org_index_writer.h"
#include "common/publish/publisher.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {
namespace {

// Writes without fsync: a generated root is rebuilt, never recovered.
class UnsyncedWritableFile final : public WritableFile {
 public:
  explicit UnsyncedWritableFile(std::unique_ptr<WritableFile> base) : base_(std::move(base)) {}
  Status Append(const void* data, size_t n) override { return base_->Append(data, n); }
  Status Sync() override { return Status::OK(); }
  Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }

 private:
  std::unique_ptr<WritableFile> base_;
};

class UnsyncedEnv final : public EnvWrapper {
 public:
  UnsyncedEnv() : EnvWrapper(Env::Default()) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& p,
                                                        uint32_t mode) override {
    SA_ASSIGN_OR_RETURN(auto base, target()->NewWritableFile(p, mode));
    return std::unique_ptr<WritableFile>(new UnsyncedWritableFile(std::move(base)));
  }
  Status SyncDir(const std::string&) override { return Status::OK(); }
};

UnsyncedEnv* SharedUnsyncedEnv() {
  static UnsyncedEnv* env = new UnsyncedEnv();  // never deleted, like Env::Default()
  return env;
}

}  // namespace

PublishRootGenerator::PublishRootGenerator(Options options) : options_(std::move(options)) {}

std::string PublishRootGenerator::RepoName(size_t index) const {
  char name[32];
  std::snprintf(name, sizeof name, "repo-%05zu", index);
  return options_.org + "/" + name;
}

std::map<std::string, std::string> PublishRootGenerator::Files(size_t index, int generation) const {
  const std::string repo = RepoName(index);
  std::map<std::string, std::string> files;
  files["config.json"] = "{\"repo\": \"" + repo +
                         "\", \"generation\": " + std::to_string(generation) +
                         ", \"hidden_size\": 64}\n";
  files["tokenizer.json"] = "{\"repo\": \"" + repo + "\", \"vocab\": [\"<s>\", \"</s>\"]}\n";
  files["weights.bin"] = RandomBytes(options_.weights_bytes, 0x5ca1e000000ULL + index);
  if (options_.big_bytes > 0 && generation >= 1) {
    files["big.bin"] = RandomBytes(
        options_.big_bytes, 0xb16000000000ULL + index * 1000 + static_cast<uint64_t>(generation));
  }
  return files;
}

Result<GeneratedRevision> PublishRootGenerator::Publish(size_t index, int generation) {
  Env* env = SharedUnsyncedEnv();
  const std::string repo = RepoName(index);
  // A fresh input directory per call, so that no file of another generation lingers.
  const std::string input = JoinPath(options_.work_dir, "input-" + std::to_string(index));
  SA_RETURN_IF_ERROR(RemoveTree(env, input));
  SA_RETURN_IF_ERROR(CreateDirs(env, input));
  for (const auto& [path, content] : Files(index, generation)) {
    SA_ASSIGN_OR_RETURN(auto file, env->NewWritableFile(JoinPath(input, path), 0644));
    SA_RETURN_IF_ERROR(file->Append(content.data(), content.size()));
    SA_RETURN_IF_ERROR(file->Close());
  }
  PublishOptions publish;
  publish.input_dir = input;
  publish.repo = repo;
  publish.out_root = options_.root;
  publish.write_org_index = false;  // once for all, by WriteOrgIndex
  auto published = PublishDirectory(env, publish);
  Status removed = RemoveTree(env, input);
  if (!published.ok()) {
    return published.status().WithContext("generate generation " + std::to_string(generation) +
                                          " of " + repo);
  }
  SA_RETURN_IF_ERROR(removed);
  if (published->unchanged) {
    return Status::InvalidArgument("generate " + repo,
                                   "generation " + std::to_string(generation) +
                                       " equals the latest published revision; nothing was "
                                       "published");
  }
  GeneratedRevision out;
  out.repo = repo;
  out.revision = published->manifest.revision;
  const std::string repo_dir = JoinPath(options_.root, repo);
  SA_ASSIGN_OR_RETURN(FileInfo pointer, env->Stat(JoinPath(repo_dir, kPointerName)));
  SA_ASSIGN_OR_RETURN(FileInfo manifest,
                      env->Stat(JoinPath(repo_dir, PublishedManifestPath(out.revision))));
  out.pointer_bytes = pointer.size;
  out.manifest_bytes = manifest.size;
  out.new_object_bytes = published->bytes_written;
  out.new_objects = published->objects_written;
  return out;
}

Status PublishRootGenerator::WriteOrgIndex() {
  return sync_agent::WriteOrgIndex(SharedUnsyncedEnv(), options_.root, options_.org);
}

}  // namespace sync_agent::testing
