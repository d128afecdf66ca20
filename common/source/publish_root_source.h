// Publish roots: the static tree `sync-agent publish` writes
// (schema/published_tree.md), read over HTTP(S) from any server or CDN
// (HttpSource) or from a local or mounted file system (FileSource).
//
//   Poll           a conditional read of "<root>/<repo>/latest": the pointer
//                  names the revision and its manifest's sha256 (the
//                  fingerprint); the same bytes as last time are not_modified
//   FetchRevision  "revisions/<revision>.json", checked against the
//                  pointer's sha256 before it is parsed and validated
//   FetchContent   "objects/<ab>/<sha256>", resumable from an offset
//   extras         "signatures/..." and "deltas/..." as the manifest lists them
//
// The [[repo]] keys of this kind: sources = ["http://...", "file:///..."].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/http/http_client.h"
#include "common/source/source.h"
#include "common/source/source_kind.h"

namespace sync_agent {

// What the two publish root kinds share: the published tree's layout and its
// checks. Subclasses read files of "<root>/<repo>/".
class PublishRootSource : public Source {
 public:
  PublishRootSource(std::string root, std::string repo, SourceOptions options);

  const std::string& url() const override { return root_; }
  const std::string& repo() const override { return repo_; }
  Result<PollResult> Poll(const PollValidators* prev) override;
  Result<RevisionListing> FetchRevision(const PollResult& poll) override;
  Status FetchContent(const ContentRef& content, uint64_t offset, ObjectSink* sink) override;
  Status FetchContentRanges(const ContentRef& content, const std::vector<ByteRange>& ranges,
                            const RangeSink& sink) override;
  std::string ContentLocation(const ContentRef& content) const override;
  Status FetchSignature(const std::string& content_sha256, const SignatureRef& signature,
                        ObjectSink* sink) override;
  Status FetchDelta(const std::string& to_sha256, const DeltaRef& delta, ObjectSink* sink) override;
  std::string SignatureLocation(const std::string& content_sha256,
                                const SignatureRef& signature) const override;
  std::string DeltaLocation(const std::string& to_sha256, const DeltaRef& delta) const override;
  Result<std::optional<std::string>> FetchRevisionSignatures(const PollResult& poll) override;
  std::string RevisionSignaturesLocation(const std::string& revision) const override;

  // Reads of "<root>/<repo>/<rel>", for the subclass to implement.
  struct PointerRead {
    bool not_modified = false;  // an HTTP 304 to the validators given
    std::string body;
    PollValidators validators;  // etag and last_modified; digest is set by Poll
  };
  virtual Result<PointerRead> ReadPointer(const PollValidators* prev) = 0;
  // The whole small file (kInvalidArgument past max_bytes).
  virtual Result<std::string> ReadSmallFile(const std::string& rel, uint64_t max_bytes) = 0;
  // From offset to the end, as Source::FetchContent. Missing: kNotFound.
  virtual Status ReadFile(const std::string& rel, uint64_t offset, ObjectSink* sink) = 0;
  // As Source::FetchContentRanges for the file of file_size bytes at rel.
  virtual Status ReadRanges(const std::string& rel, uint64_t file_size,
                            const std::vector<ByteRange>& ranges, const RangeSink& sink) = 0;
  // Where rel is read from: a URL or a path.
  virtual std::string Location(const std::string& rel) const = 0;

 protected:
  const SourceOptions& options() const { return options_; }

 private:
  std::string root_;
  std::string repo_;
  SourceOptions options_;
  RevisionPointer pointer_;  // what the last Poll read
};

class FileSource final : public PublishRootSource {
 public:
  // root: the URL as configured; dir: the absolute directory it names.
  FileSource(std::string root, std::string dir, std::string repo, SourceOptions options);
  Result<PointerRead> ReadPointer(const PollValidators* prev) override;
  Result<std::string> ReadSmallFile(const std::string& rel, uint64_t max_bytes) override;
  Status ReadFile(const std::string& rel, uint64_t offset, ObjectSink* sink) override;
  Status ReadRanges(const std::string& rel, uint64_t file_size,
                    const std::vector<ByteRange>& ranges, const RangeSink& sink) override;
  std::string Location(const std::string& rel) const override;
  std::unique_ptr<Source> Fork() const override;

 private:
  std::string dir_;
  Env* env_;
};

class HttpSource final : public PublishRootSource {
 public:
  HttpSource(std::string root, std::string repo, SourceOptions options);
  Result<PointerRead> ReadPointer(const PollValidators* prev) override;
  Result<std::string> ReadSmallFile(const std::string& rel, uint64_t max_bytes) override;
  Status ReadFile(const std::string& rel, uint64_t offset, ObjectSink* sink) override;
  Status ReadRanges(const std::string& rel, uint64_t file_size,
                    const std::vector<ByteRange>& ranges, const RangeSink& sink) override;
  std::string Location(const std::string& rel) const override;
  std::unique_ptr<Source> Fork() const override;

 private:
  HttpClient client_;
};

// The publish root at url (http://, https://, file:///abs) for repo.
Result<std::unique_ptr<PublishRootSource>> MakePublishRootSource(const std::string& url,
                                                                 const std::string& repo,
                                                                 const SourceOptions& options);

// The [[repo]] settings of this kind: the publish roots, in preference order.
class PublishRootSpec final : public SourceSpec {
 public:
  explicit PublishRootSpec(std::vector<std::string> roots) : roots_(std::move(roots)) {}
  const char* kind() const override { return "publish"; }
  std::vector<std::string> urls() const override { return roots_; }
  Result<std::unique_ptr<Source>> Make(const std::string& url, const std::string& repo,
                                       const SourceOptions& options) const override;
  std::vector<SpecField> Describe() const override;
  bool CarriesRevisionSignatures() const override { return true; }
  // "<root>/<org>/index.json" (schema/org_index.md).
  bool ListsOrganisations() const override { return true; }
  Result<std::vector<std::string>> ListOrganisation(const std::string& url, const std::string& org,
                                                    const SourceOptions& options,
                                                    size_t max_repos) const override;

 private:
  std::vector<std::string> roots_;
};

// `sources = [...]`.
class PublishRootKind final : public SourceKind {
 public:
  const char* name() const override { return "publish"; }
  const char* description() const override { return "publish roots"; }
  const char* selector() const override { return "sources"; }
  std::vector<std::string> keys() const override { return {"sources"}; }
  Result<std::shared_ptr<const SourceSpec>> Parse(const RepoTable& table) const override;
};

}  // namespace sync_agent
