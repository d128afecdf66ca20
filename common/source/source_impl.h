// The concrete Source kinds. Callers normally use MakeSource(); tests may
// construct these directly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http/http_client.h"
#include "common/source/source.h"

namespace sync_agent {

// FetchRanges' precondition: kInvalidArgument naming location unless ranges
// are sorted, non-overlapping, non-empty and inside [0, file_size).
Status CheckRangesArgument(const std::string& location, uint64_t file_size,
                           const std::vector<ByteRange>& ranges);

// kCorruption: the published file at location has actual bytes where the
// caller expected file_size (it is not the file the manifest describes).
// how says where the size came from, e.g. "Content-Range: bytes 0-9/20".
Status FileSizeMismatch(const std::string& location, uint64_t actual, uint64_t expected,
                        const std::string& how);

class FileSource final : public Source {
 public:
  // root: the URL as configured; dir: the absolute directory it names.
  FileSource(std::string root, std::string dir, Env* env, SourceOptions options);
  const std::string& root() const override { return root_; }
  Result<PointerFetch> FetchPointer(const std::string& repo,
                                    const PointerValidators* prev) override;
  Result<std::string> FetchManifest(const std::string& repo, const std::string& revision) override;
  Status FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                   ObjectSink* sink) override;
  Status FetchRanges(const std::string& repo, const std::string& rel_path, uint64_t file_size,
                     const std::vector<ByteRange>& ranges, const RangeSink& sink) override;
  std::string FileLocation(const std::string& repo, const std::string& rel_path) const override;

 private:
  std::string root_;
  std::string dir_;
  Env* env_;
  SourceOptions options_;
};

class HttpSource final : public Source {
 public:
  HttpSource(std::string root, SourceOptions options);
  const std::string& root() const override { return root_; }
  Result<PointerFetch> FetchPointer(const std::string& repo,
                                    const PointerValidators* prev) override;
  Result<std::string> FetchManifest(const std::string& repo, const std::string& revision) override;
  Status FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                   ObjectSink* sink) override;
  Status FetchRanges(const std::string& repo, const std::string& rel_path, uint64_t file_size,
                     const std::vector<ByteRange>& ranges, const RangeSink& sink) override;
  std::string FileLocation(const std::string& repo, const std::string& rel_path) const override;

 private:
  std::string Url(const std::string& repo, const std::string& rel) const;

  std::string root_;
  SourceOptions options_;
  HttpClient client_;
};

}  // namespace sync_agent
