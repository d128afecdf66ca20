// Source: one conformance suite run over every kind of source and every way
// of reaching it (as osquery runs CREATE_DATABASE_TESTS over each database
// plugin): a publish root written by PublishDirectory and read from file://,
// through a real nginx and through the built-in StaticFileServer; a git
// remote with Git LFS as a local path and over smart HTTP (git-http-backend
// behind nginx, with a test LFS server); a Hugging Face-compatible hub with
// its CDN. Each kind has a Harness that makes revisions with a given file set
// and a Source for them; the tests then ask every source the same questions
// and check the answers byte for byte against the files that were committed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"
#include "common/git/git_source.h"
#include "common/hash/content_hasher.h"
#include "common/http/static_server.h"
#include "common/hub/hub_source.h"
#include "common/manifest/manifest.h"
#include "common/publish/publisher.h"
#include "common/source/publish_root_source.h"
#include "common/source/source.h"
#include "tests/support/git_repo.h"
#include "tests/support/hub_server.h"
#include "tests/support/lfs_server.h"
#include "tests/support/nginx_server.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;
using testing::HubServer;
using testing::NginxServer;
using testing::RandomBytes;
using testing::TempDir;

constexpr const char* kRepo = "acme/llm-7b";
// A repository no origin of these tests has.
constexpr const char* kMissingRepo = "acme/no-such-model";
// Large enough for PublishDirectory's default 1 MiB signature threshold,
// small enough to keep the suite fast; odd, so that no piece size divides it.
constexpr size_t kLargeSize = (5 << 19) + 123;

// A file of a revision. large: stored as a large file where the kind has
// such a thing (Git LFS for git, the CDN for a hub); publish roots treat
// every file alike and sign those above 1 MiB.
struct FileSpec {
  std::string content;
  bool large = false;
};
using FileSet = std::map<std::string, FileSpec>;  // by path

// Git tracks this pattern with LFS, so a large file's path must match it.
bool IsLfsPath(const std::string& path) {
  const std::string suffix = ".safetensors";
  return path.size() > suffix.size() &&
         path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The first revision: small regular files (one empty, one binary, one in a
// directory), a small and a large LFS file.
// (Made once: tests ask for them often.)
const FileSet& FirstFiles() {
  static const FileSet files = {
      {"config.json", {"{\"layers\": 2, \"heads\": 8}\n"}},
      {"empty.txt", {""}},
      {"tokenizer/vocab.bin", {RandomBytes(6000, 1)}},
      {"notes/README.md", {"# llm-7b\n\nWeights for tests.\n"}},
      {"adapter.safetensors", {RandomBytes(3000, 2), true}},
      {"model.safetensors", {RandomBytes(kLargeSize, 3), true}},
  };
  return files;
}

// The second: the config changes, a few KiB in the middle of the weights
// change (so a delta from the first is small), the README is gone and a
// file is new.
const FileSet& SecondFiles() {
  static const FileSet files = [] {
    FileSet f = FirstFiles();
    f["config.json"].content = "{\"layers\": 3, \"heads\": 8}\n";
    f["model.safetensors"].content.replace(kLargeSize / 2, 4096, RandomBytes(4096, 4));
    f.erase("notes/README.md");
    f["generation_config.json"] = {"{\"temperature\": 0.7}\n"};
    return f;
  }();
  return files;
}

// "" when got == want, else how they differ (without dumping the bytes).
std::string Diff(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "got " + std::to_string(got.size()) + " bytes, expected " + std::to_string(want.size()) +
         "; first difference at byte " + std::to_string(i);
}

// ---------------------------------------------------------------------------
// The harnesses: one per kind of source and way of reaching it.

class Harness {
 public:
  virtual ~Harness() = default;
  // Starts what serves the repository. When this machine lacks something the
  // kind needs, sets *skip to why and starts nothing.
  virtual void Start(std::string* skip) = 0;
  // Makes the repository's next revision hold exactly files; returns the
  // revision id a poll should name.
  virtual std::string Commit(const FileSet& files) = 0;
  // The files (path -> content) a revision made from files lists: those, and
  // what the kind adds of its own.
  virtual std::map<std::string, std::string> Listed(const FileSet& files) const {
    std::map<std::string, std::string> out;
    for (const auto& [path, f] : files) out[path] = f.content;
    return out;
  }
  // A source for repo (kRepo, or kMissingRepo: one the origin does not have).
  virtual Result<std::unique_ptr<Source>> MakeSource(const std::string& repo,
                                                     const SourceOptions& options) = 0;
  // What every location the source names must contain: its URL or directory.
  virtual std::string Where() const = 0;
  // Whether the kind publishes librsync signatures and deltas.
  virtual bool PublishesDeltas() const = 0;
  // Whether its server may answer a request for several ranges with the
  // whole file, which the source reports as kUnsupported (see
  // FetchRangesAsAllowed).
  virtual bool MayRefuseSeveralRanges() const { return false; }
};

// A publish root written with PublishDirectory (default options: signatures
// of files from 1 MiB, deltas from the two previous revisions).
class PublishRootHarness final : public Harness {
 public:
  enum class Server { kNone, kNginx, kStaticServer };

  PublishRootHarness(const TempDir& tmp, Server server)
      : tmp_(tmp), server_(server), root_(tmp.Sub("publish")) {}

  void Start(std::string* skip) override {
    testing::MakeDirs(root_);
    switch (server_) {
      case Server::kNone:
        url_ = "file://" + root_;
        break;
      case Server::kNginx: {
        if (!NginxServer::Available()) {
          *skip = "/usr/sbin/nginx is not installed";
          return;
        }
        nginx_ = std::make_unique<NginxServer>(NginxServer::Options{.root = root_});
        std::string error;
        ASSERT_TRUE(nginx_->Start(&error)) << error;
        url_ = nginx_->url();
        break;
      }
      case Server::kStaticServer: {
        StaticFileServer::Options options;
        options.root = root_;
        static_server_ = std::make_unique<StaticFileServer>(options);
        Status started = static_server_->Start();
        ASSERT_TRUE(started.ok()) << started.ToString();
        url_ = static_server_->url();
        break;
      }
    }
  }

  std::string Commit(const FileSet& files) override {
    // A fresh input directory each time: files not listed are gone.
    const std::string input = tmp_.Sub("input-" + std::to_string(++revisions_));
    testing::MakeDirs(input);
    for (const auto& [path, f] : files) testing::WriteFile(input + "/" + path, f.content);
    PublishOptions options;
    options.input_dir = input;
    options.repo = kRepo;
    options.out_root = root_;
    auto published = PublishDirectory(Env::Default(), options);
    EXPECT_TRUE(published.ok()) << published.status().ToString();
    return published.ok() ? published->manifest.revision : "";
  }

  Result<std::unique_ptr<Source>> MakeSource(const std::string& repo,
                                             const SourceOptions& options) override {
    return PublishRootSpec({url_}).Make(url_, repo, options);
  }

  // A FileSource names paths under the directory, HttpSource URLs.
  std::string Where() const override { return server_ == Server::kNone ? root_ : url_; }
  bool PublishesDeltas() const override { return true; }

 private:
  const TempDir& tmp_;
  const Server server_;
  const std::string root_;
  std::string url_;
  int revisions_ = 0;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<StaticFileServer> static_server_;
};

// A git work repository (the real git and git-lfs tools) tracking
// *.safetensors with LFS: the remote itself (a local path), or a bare copy
// served over smart HTTP with its LFS objects on a test LFS server.
class GitHarness final : public Harness {
 public:
  GitHarness(const TempDir& tmp, bool http) : tmp_(tmp), http_(http) {}

  void Start(std::string* skip) override {
    if (!testing::GitLfsAvailable()) {
      *skip = "git-lfs is not installed (apt-get install git-lfs)";
      return;
    }
    work_ = tmp_.Sub("git-work");
    testing::MakeDirs(tmp_.Sub("home"));
    repo_ = std::make_unique<testing::GitWorkRepo>(work_, tmp_.Sub("home"), "*.safetensors");
    ASSERT_FALSE(::testing::Test::HasFailure());
    if (!http_) {
      remote_ = work_;
      missing_remote_ = tmp_.Sub("no-such-remote");
      return;
    }
    if (!NginxServer::Available()) {
      *skip = "/usr/sbin/nginx is not installed";
      return;
    }
    if (::access("/usr/sbin/fcgiwrap", X_OK) != 0) {
      *skip = "fcgiwrap is not installed (apt-get install fcgiwrap)";
      return;
    }
    lfs_ = std::make_unique<testing::LfsServer>();
    std::string error;
    fcgi_ = testing::StartFcgiWrap(tmp_.Sub("fcgi.sock"), &error);
    ASSERT_NE(fcgi_, nullptr) << error;
    NginxServer::Options o;
    o.root = tmp_.Sub("www");
    o.git_project_root = tmp_.Sub("git-root");
    o.fcgi_socket = tmp_.Sub("fcgi.sock");
    o.lfs_upstream = lfs_->url().substr(std::string("http://").size());
    testing::MakeDirs(o.root);
    testing::MakeDirs(o.git_project_root + "/acme");
    nginx_ = std::make_unique<NginxServer>(o);
    ASSERT_TRUE(nginx_->Start(&error)) << error;
    bare_ = o.git_project_root + "/" + kRepo + ".git";
    remote_ = nginx_->url() + "/" + kRepo + ".git";
    missing_remote_ = nginx_->url() + "/" + kMissingRepo + ".git";
  }

  std::string Commit(const FileSet& files) override {
    for (const auto& [path, f] : files_) {
      if (files.count(path) == 0) std::filesystem::remove(work_ + "/" + path);
    }
    for (const auto& [path, f] : files) {
      EXPECT_EQ(f.large, IsLfsPath(path)) << path << ": only *.safetensors are in LFS here";
      testing::WriteFile(work_ + "/" + path, f.content);
    }
    files_ = files;
    const std::string commit = repo_->Commit("revision " + std::to_string(++revisions_));
    if (http_) {
      // A fresh bare copy each time (what a push would leave), and the LFS
      // objects where the batch API finds them (what git lfs push does).
      std::filesystem::remove_all(bare_);
      repo_->Git({"clone", "-q", "--bare", work_, bare_});
      for (const auto& [path, f] : files) {
        if (f.large) lfs_->Add(f.content);
      }
    }
    return commit;
  }

  // git lfs track wrote .gitattributes, which the commit holds like any file.
  std::map<std::string, std::string> Listed(const FileSet& files) const override {
    auto out = Harness::Listed(files);
    out[".gitattributes"] = testing::ReadFile(work_ + "/.gitattributes");
    return out;
  }

  Result<std::unique_ptr<Source>> MakeSource(const std::string& repo,
                                             const SourceOptions& options) override {
    const std::string& remote = repo == kRepo ? remote_ : missing_remote_;
    return GitSpec(remote, "main").Make(remote, repo, options);
  }

  std::string Where() const override { return remote_; }
  bool PublishesDeltas() const override { return false; }

 private:
  const TempDir& tmp_;
  const bool http_;
  std::string work_, bare_, remote_, missing_remote_;
  std::unique_ptr<testing::GitWorkRepo> repo_;
  FileSet files_;  // of the last commit
  int revisions_ = 0;
  std::unique_ptr<testing::LfsServer> lfs_;
  std::unique_ptr<testing::BackgroundProcess> fcgi_;
  std::unique_ptr<NginxServer> nginx_;
};

// A HubServer repository: large files are LFS files, served by its CDN on
// another loopback address; regular files come from the hub itself.
class HubHarness final : public Harness {
 public:
  void Start(std::string* skip) override {
    std::string why;
    if (!HubServer::CanListenOn("127.0.0.2", &why)) {
      *skip = "cannot listen on 127.0.0.2 for the test CDN: " + why;
      return;
    }
    hub_ = std::make_unique<HubServer>();
  }

  std::string Commit(const FileSet& files) override {
    std::map<std::string, HubServer::File> hub_files;
    for (const auto& [path, f] : files) hub_files[path] = {f.content, f.large};
    return hub_->Commit(kRepo, testing::RepoType::kModel, "main", hub_files,
                        "revision " + std::to_string(++revisions_));
  }

  Result<std::unique_ptr<Source>> MakeSource(const std::string& repo,
                                             const SourceOptions& options) override {
    HubRepoSettings settings;
    settings.hub = hub_->url();
    return HubSpec(settings).Make(hub_->url(), repo, options);
  }

  std::string Where() const override { return hub_->url(); }
  bool PublishesDeltas() const override { return false; }
  // Its CDN does not do multipart answers (nor do S3 and CloudFront).
  bool MayRefuseSeveralRanges() const override { return true; }

 private:
  std::unique_ptr<HubServer> hub_;
  int revisions_ = 0;
};

enum class Kind { kFile, kNginx, kStaticServer, kGitLocal, kGitHttp, kHub };

std::string KindName(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::kFile:
      return "File";
    case Kind::kNginx:
      return "Nginx";
    case Kind::kStaticServer:
      return "StaticServer";
    case Kind::kGitLocal:
      return "GitLocal";
    case Kind::kGitHttp:
      return "GitHttp";
    case Kind::kHub:
      return "Hub";
  }
  return "Unknown";
}

std::unique_ptr<Harness> MakeHarness(Kind kind, const TempDir& tmp) {
  using Server = PublishRootHarness::Server;
  switch (kind) {
    case Kind::kFile:
      return std::make_unique<PublishRootHarness>(tmp, Server::kNone);
    case Kind::kNginx:
      return std::make_unique<PublishRootHarness>(tmp, Server::kNginx);
    case Kind::kStaticServer:
      return std::make_unique<PublishRootHarness>(tmp, Server::kStaticServer);
    case Kind::kGitLocal:
      return std::make_unique<GitHarness>(tmp, /*http=*/false);
    case Kind::kGitHttp:
      return std::make_unique<GitHarness>(tmp, /*http=*/true);
    case Kind::kHub:
      return std::make_unique<HubHarness>();
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Sinks that check what a source hands them.

// Receives a FetchContent stream, and notes any breach of the ObjectSink
// contract: Begin() exactly once, before any data.
class RecordingSink final : public ObjectSink {
 public:
  Status Begin(uint64_t offset) override {
    if (++begins_ > 1 && problem_.empty()) problem_ = "Begin() called more than once";
    offset_ = offset;
    data_.clear();
    return Status::OK();
  }
  Status Write(const char* data, size_t n) override {
    if (begins_ == 0 && problem_.empty()) problem_ = "data before Begin()";
    data_.append(data, n);
    return Status::OK();
  }

  // "" when the stream of a fetch from offset is content from there on
  // (Begin(offset)) or all of it (Begin(0), as the contract allows); else
  // what is wrong.
  std::string Check(const std::string& content, uint64_t offset) const {
    if (!problem_.empty()) return problem_;
    if (begins_ == 0) return "Begin() was never called";
    std::string diff;
    if (offset_ == offset) {
      diff = Diff(data_, content.substr(offset));
    } else if (offset_ == 0) {
      diff = Diff(data_, content);
    } else {
      return "Begin(" + std::to_string(offset_) + ") for a fetch from " + std::to_string(offset);
    }
    return diff.empty() ? "" : "Begin(" + std::to_string(offset_) + "): " + diff;
  }

 private:
  int begins_ = 0;
  uint64_t offset_ = 0;
  std::string data_;
  std::string problem_;
};

// Receives FetchContentRanges data into a copy of the content's extent, so
// that the bytes of each range can be compared afterwards.
class RangeCollector {
 public:
  explicit RangeCollector(uint64_t size) : got_(size, '\0'), seen_(size, false) {}

  RangeSink sink() {
    return [this](uint64_t offset, const char* data, size_t n) -> Status {
      if (offset > got_.size() || n > got_.size() - offset) {
        if (problem_.empty()) {
          problem_ = std::to_string(n) + " bytes at " + std::to_string(offset) +
                     " run past the end of the content";
        }
        return Status::OK();
      }
      std::memcpy(got_.data() + offset, data, n);
      std::fill(seen_.begin() + static_cast<std::ptrdiff_t>(offset),
                seen_.begin() + static_cast<std::ptrdiff_t>(offset + n), true);
      return Status::OK();
    };
  }

  // "" when every byte of ranges arrived and equals content's; else what is wrong.
  std::string Check(const std::string& content, const std::vector<ByteRange>& ranges) const {
    if (!problem_.empty()) return problem_;
    for (const ByteRange& r : ranges) {
      for (uint64_t i = r.offset; i < r.end(); ++i) {
        if (!seen_[i]) return "byte " + std::to_string(i) + " never arrived";
      }
      std::string diff = Diff(got_.substr(r.offset, r.length), content.substr(r.offset, r.length));
      if (!diff.empty()) {
        return "range at " + std::to_string(r.offset) + " (" + std::to_string(r.length) +
               " bytes): " + diff;
      }
    }
    return "";
  }

 private:
  std::string got_;
  std::vector<bool> seen_;
  std::string problem_;
};

// Receives a whole file (a signature, a delta): Begin(0), then its bytes.
class WholeFileSink final : public ObjectSink {
 public:
  Status Begin(uint64_t offset) override {
    data.clear();
    if (offset == 0) return Status::OK();
    return Status::InvalidArgument("test sink",
                                   "a whole file begins at 0, not " + std::to_string(offset));
  }
  Status Write(const char* d, size_t n) override {
    data.append(d, n);
    return Status::OK();
  }
  std::string data;
};

// The ranges asked of a content of size bytes: its first and last byte, and
// for a large one pieces across the 1 MiB marks and in the middle.
std::vector<ByteRange> RangesOf(uint64_t size) {
  if (size <= 1) return {{0, 1}};
  if (size < 3 * 4096) return {{0, 1}, {size / 2, 1}, {size - 1, 1}};
  return {{0, 1}, {1000, 5000}, {(1 << 20) - 3, 10}, {size / 2 - 100, 4300}, {size - 1, 1}};
}

// Fetches ranges of content into got. Where the kind's server may refuse
// several ranges in one request (Harness::MayRefuseSeveralRanges), the
// source says so with kUnsupported, as its contract allows; each range is
// then asked for alone, which every server must serve.
Status FetchRangesAsAllowed(Source* source, const ContentRef& content,
                            const std::vector<ByteRange>& ranges, bool may_refuse_several,
                            RangeCollector* got) {
  Status s = source->FetchContentRanges(content, ranges, got->sink());
  if (s.code() != Status::Code::kUnsupported || !may_refuse_several || ranges.size() < 2 ||
      s.message().find("ignores Range requests") == std::string::npos) {
    return s;
  }
  for (const ByteRange& r : ranges) {
    SA_RETURN_IF_ERROR(source->FetchContentRanges(content, {r}, got->sink()));
  }
  return Status::OK();
}

// ---------------------------------------------------------------------------
// The suite.

class SourceConformanceTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    harness_ = MakeHarness(GetParam(), tmp_);
    std::string skip;
    ASSERT_NO_FATAL_FAILURE(harness_->Start(&skip));
    if (!skip.empty()) GTEST_SKIP() << skip;
  }

  std::unique_ptr<Source> NewSource(const std::string& repo = kRepo) {
    SourceOptions options;
    options.cancel = &cancel_;
    options.state_dir = tmp_.Sub("state");
    // A hung answer fails the test well before ctest's timeout.
    options.io_timeout = std::chrono::seconds(10);
    auto source = harness_->MakeSource(repo, options);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    return source.ok() ? std::move(source).value() : nullptr;
  }

  // Commits files, polls source and lists the revision; fails the test
  // unless the poll names the commit.
  RevisionListing CommitAndList(Source* source, const FileSet& files) {
    const std::string revision = harness_->Commit(files);
    EXPECT_FALSE(revision.empty());
    auto poll = source->Poll(nullptr);
    EXPECT_TRUE(poll.ok()) << poll.status().ToString();
    if (!poll.ok()) return {};
    EXPECT_EQ(poll->revision, revision);
    auto listing = source->FetchRevision(*poll);
    EXPECT_TRUE(listing.ok()) << listing.status().ToString();
    if (!listing.ok()) return {};
    return std::move(listing).value();
  }

  static const ManifestEntry* Find(const Manifest& m, const std::string& path) {
    for (const ManifestEntry& e : m.files) {
      if (e.path == path) return &e;
    }
    return nullptr;
  }

  // Expects that manifest lists exactly the files of listed, by path, size,
  // sha256 and (where the source knows it) xxh3.
  static void ExpectListsExactly(const Manifest& manifest,
                                 const std::map<std::string, std::string>& listed) {
    std::map<std::string, const ManifestEntry*> entries;
    for (const ManifestEntry& e : manifest.files) {
      EXPECT_TRUE(entries.emplace(e.path, &e).second) << e.path << " is listed twice";
    }
    for (const auto& [path, content] : listed) {
      auto it = entries.find(path);
      if (it == entries.end()) {
        ADD_FAILURE() << path << " is not listed";
        continue;
      }
      const ManifestEntry& e = *it->second;
      const ContentDigest digest = HashBytes(content);
      EXPECT_EQ(e.size, content.size()) << path;
      EXPECT_EQ(e.sha256, digest.sha256) << path;
      // Optional (a git LFS object's is known only once downloaded), but
      // right when given.
      if (!e.xxh3_128.empty()) {
        EXPECT_EQ(e.xxh3_128, digest.xxh3_128) << path;
      }
    }
    for (const auto& [path, e] : entries) {
      EXPECT_EQ(listed.count(path), 1u) << path << " is listed but is not in the revision";
    }
  }

  // Every entry, whole, from the middle and from its end, through source.
  static void ExpectEveryEntryStreams(Source* source, const Manifest& manifest,
                                      const std::map<std::string, std::string>& listed) {
    for (const ManifestEntry& e : manifest.files) {
      const std::string& content = listed.at(e.path);
      std::vector<uint64_t> offsets = {0};
      if (e.size > 1) offsets.push_back(e.size / 2);
      // What a resume of a complete partial file asks for.
      if (e.size > 0) offsets.push_back(e.size);
      for (uint64_t offset : offsets) {
        RecordingSink sink;
        Status s = source->FetchContent(ContentOf(manifest, e), offset, &sink);
        ASSERT_TRUE(s.ok()) << e.path << " from " << offset << ": " << s.ToString();
        EXPECT_EQ(sink.Check(content, offset), "") << e.path << " from " << offset;
      }
    }
  }

  // The ranges RangesOf names, of every entry but empty ones, through source.
  void ExpectRangesOfEveryEntry(Source* source, const Manifest& manifest,
                                const std::map<std::string, std::string>& listed) {
    for (const ManifestEntry& e : manifest.files) {
      if (e.size == 0) continue;
      const std::vector<ByteRange> ranges = RangesOf(e.size);
      RangeCollector got(e.size);
      Status s = FetchRangesAsAllowed(source, ContentOf(manifest, e), ranges,
                                      harness_->MayRefuseSeveralRanges(), &got);
      ASSERT_TRUE(s.ok()) << e.path << ": " << s.ToString();
      EXPECT_EQ(got.Check(listed.at(e.path), ranges), "") << e.path;
    }
  }

  TempDir tmp_{/*world_readable=*/true};  // nginx's workers read under it
  CancelFlag cancel_;
  std::unique_ptr<Harness> harness_;
};

TEST_P(SourceConformanceTest, PollNamesTheRevisionAndIsConditional) {
  const std::string first = harness_->Commit(FirstFiles());
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  auto poll = source->Poll(nullptr);
  ASSERT_TRUE(poll.ok()) << poll.status().ToString();
  EXPECT_FALSE(poll->not_modified);
  EXPECT_EQ(poll->revision, first);
  EXPECT_FALSE(poll->fingerprint.empty());

  // The validators of the first poll make the next one conditional, on the
  // same source and on a new one (the engine keeps them between runs).
  std::unique_ptr<Source> fresh = NewSource();
  ASSERT_NE(fresh, nullptr);
  for (Source* again : {source.get(), fresh.get()}) {
    auto unchanged = again->Poll(&poll->validators);
    ASSERT_TRUE(unchanged.ok()) << unchanged.status().ToString();
    EXPECT_TRUE(unchanged->not_modified);
    EXPECT_EQ(unchanged->revision, "") << "a not_modified poll names no revision";
    EXPECT_EQ(unchanged->fingerprint, "");
  }

  const std::string second = harness_->Commit(SecondFiles());
  ASSERT_NE(second, first);
  auto moved = source->Poll(&poll->validators);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_FALSE(moved->not_modified);
  EXPECT_EQ(moved->revision, second);
  EXPECT_FALSE(moved->fingerprint.empty());
  EXPECT_NE(moved->fingerprint, poll->fingerprint) << "the revisions' files differ";

  std::unique_ptr<Source> next_run = NewSource();
  ASSERT_NE(next_run, nullptr);
  auto settled = next_run->Poll(&moved->validators);
  ASSERT_TRUE(settled.ok()) << settled.status().ToString();
  EXPECT_TRUE(settled->not_modified);
}

TEST_P(SourceConformanceTest, FetchRevisionListsExactlyTheFiles) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  for (const FileSet* files : {&FirstFiles(), &SecondFiles()}) {
    const std::string revision = harness_->Commit(*files);
    auto poll = source->Poll(nullptr);
    ASSERT_TRUE(poll.ok()) << poll.status().ToString();
    ASSERT_EQ(poll->revision, revision);
    auto listing = source->FetchRevision(*poll);
    ASSERT_TRUE(listing.ok()) << listing.status().ToString();
    const Manifest& m = listing->manifest;
    EXPECT_EQ(m.repo, kRepo);
    EXPECT_EQ(m.revision, poll->revision);
    Status valid = ValidateManifest(m);
    EXPECT_TRUE(valid.ok()) << valid.ToString();
    EXPECT_TRUE(IsLowerHex(listing->manifest_sha256, 64)) << listing->manifest_sha256;
    // The fingerprint is the manifest's sha256 (publish roots) or the commit.
    EXPECT_TRUE(poll->fingerprint == listing->manifest_sha256 ||
                poll->fingerprint == poll->revision)
        << "fingerprint " << poll->fingerprint;
    EXPECT_TRUE(std::is_sorted(
        m.files.begin(), m.files.end(),
        [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; }));
    ExpectListsExactly(m, harness_->Listed(*files));
  }
}

TEST_P(SourceConformanceTest, FetchContentStreamsEveryEntryWholeAndFromAnOffset) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing first = CommitAndList(source.get(), FirstFiles());
  ASSERT_FALSE(first.manifest.files.empty());
  ExpectEveryEntryStreams(source.get(), first.manifest, harness_->Listed(FirstFiles()));

  // The next revision's files, through a source made for it (as each run of
  // the engine makes its own).
  auto later = NewSource();
  ASSERT_NE(later, nullptr);
  RevisionListing second = CommitAndList(later.get(), SecondFiles());
  ASSERT_FALSE(second.manifest.files.empty());
  ExpectEveryEntryStreams(later.get(), second.manifest, harness_->Listed(SecondFiles()));
}

// One source polled again after its repository moved on serves the new
// revision's files, whole and in ranges, and so do its forks. (It caught
// the hub source keeping CDN URLs by path alone, serving the first
// revision's bytes for the second.)
TEST_P(SourceConformanceTest, ASourceFollowsItsRepositoryAcrossRevisions) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing first = CommitAndList(source.get(), FirstFiles());
  const auto first_listed = harness_->Listed(FirstFiles());
  ExpectEveryEntryStreams(source.get(), first.manifest, first_listed);
  ExpectRangesOfEveryEntry(source.get(), first.manifest, first_listed);

  RevisionListing second = CommitAndList(source.get(), SecondFiles());
  ASSERT_FALSE(second.manifest.files.empty());
  const auto second_listed = harness_->Listed(SecondFiles());
  ExpectEveryEntryStreams(source.get(), second.manifest, second_listed);
  ExpectRangesOfEveryEntry(source.get(), second.manifest, second_listed);
  std::unique_ptr<Source> fork = source->Fork();
  ASSERT_NE(fork, nullptr);
  ExpectEveryEntryStreams(fork.get(), second.manifest, second_listed);
}

TEST_P(SourceConformanceTest, FetchContentRangesGivesExactlyTheBytesAsked) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing listing = CommitAndList(source.get(), FirstFiles());
  const ManifestEntry* large = Find(listing.manifest, "model.safetensors");
  ASSERT_NE(large, nullptr);
  ASSERT_EQ(large->size, kLargeSize);
  const auto listed = harness_->Listed(FirstFiles());
  ExpectRangesOfEveryEntry(source.get(), listing.manifest, listed);

  // One range, the whole content, and ranges that touch each other.
  const std::string& weights = listed.at("model.safetensors");
  for (const std::vector<ByteRange>& ranges : std::vector<std::vector<ByteRange>>{
           {{kLargeSize / 3, 1}},
           {{0, kLargeSize}},
           {{10, 10}, {20, 1}, {21, 3000}},
       }) {
    RangeCollector got(kLargeSize);
    Status s = FetchRangesAsAllowed(source.get(), ContentOf(listing.manifest, *large), ranges,
                                    harness_->MayRefuseSeveralRanges(), &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(got.Check(weights, ranges), "");
  }

  // No ranges is nothing to do; a range past the end is the caller's error.
  RangeCollector none(kLargeSize);
  EXPECT_TRUE(
      source->FetchContentRanges(ContentOf(listing.manifest, *large), {}, none.sink()).ok());
  Status past = source->FetchContentRanges(ContentOf(listing.manifest, *large),
                                           {{kLargeSize - 1, 2}}, none.sink());
  EXPECT_EQ(past.code(), Status::Code::kInvalidArgument) << past.ToString();
}

// FetchContentRanges: "kCancelled when options.cancel is set", whatever
// the content, also what a source reads from local disk (git blobs, a hub's
// spool), which once ignored it.
TEST_P(SourceConformanceTest, RangesAskedWithCancelSetAreCancelled) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing listing = CommitAndList(source.get(), FirstFiles());
  ASSERT_FALSE(listing.manifest.files.empty());
  cancel_.Cancel();
  for (const ManifestEntry& e : listing.manifest.files) {
    if (e.size == 0) continue;
    RangeCollector got(e.size);
    Status s = source->FetchContentRanges(ContentOf(listing.manifest, e), {{0, 1}}, got.sink());
    EXPECT_EQ(s.code(), Status::Code::kCancelled) << e.path << ": " << s.ToString();
  }
}

// Source::Fork: "May be called while another thread uses this source", as
// the engine does (SyncEngine's workers fork the polled source while its
// first thread fetches with it). ThreadSanitizer once found the hub source
// copying its CDN URL map in Fork while the other thread added to it.
TEST_P(SourceConformanceTest, ForkServesTheSameContentOnAnotherThread) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing listing = CommitAndList(source.get(), FirstFiles());
  const auto listed = harness_->Listed(FirstFiles());

  // The worker forks again and again for as long as this thread fetches, so
  // that forks overlap every kind of use of the source; then it fetches
  // everything through its last fork, which serves the polled revision
  // without a poll of its own.
  std::atomic<bool> fetching_done{false};
  std::atomic<int> forks{0};
  std::string fork_url, fork_repo;
  std::vector<std::string> whole, ranged;
  const bool may_refuse_several = harness_->MayRefuseSeveralRanges();
  std::thread worker([&] {
    std::unique_ptr<Source> fork;
    do {
      fork = source->Fork();
      ++forks;
    } while (fork != nullptr && !fetching_done);
    if (fork == nullptr) return;
    fork_url = fork->url();
    fork_repo = fork->repo();
    for (const ManifestEntry& e : listing.manifest.files) {
      RecordingSink sink;
      Status s = fork->FetchContent(ContentOf(listing.manifest, e), 0, &sink);
      whole.push_back(e.path + ": " + (s.ok() ? sink.Check(listed.at(e.path), 0) : s.ToString()));
      if (e.size == 0) continue;
      const std::vector<ByteRange> ranges = RangesOf(e.size);
      RangeCollector got(e.size);
      s = FetchRangesAsAllowed(fork.get(), ContentOf(listing.manifest, e), ranges,
                               may_refuse_several, &got);
      ranged.push_back(e.path + ": " +
                       (s.ok() ? got.Check(listed.at(e.path), ranges) : s.ToString()));
    }
  });
  // Meanwhile, this thread fetches with the source, last file first, in
  // ranges too. (No ASSERT here: the worker must be joined.)
  do {
    for (auto it = listing.manifest.files.rbegin(); it != listing.manifest.files.rend(); ++it) {
      RecordingSink sink;
      Status s = source->FetchContent(ContentOf(listing.manifest, *it), 0, &sink);
      EXPECT_TRUE(s.ok()) << it->path << ": " << s.ToString();
      EXPECT_EQ(sink.Check(listed.at(it->path), 0), "") << it->path;
      if (it->size == 0) continue;
      RangeCollector got(it->size);
      s = FetchRangesAsAllowed(source.get(), ContentOf(listing.manifest, *it), {{0, 1}},
                               may_refuse_several, &got);
      EXPECT_TRUE(s.ok()) << it->path << ": " << s.ToString();
      EXPECT_EQ(got.Check(listed.at(it->path), {{0, 1}}), "") << it->path;
    }
  } while (forks == 0);
  fetching_done = true;
  worker.join();

  ASSERT_EQ(whole.size(), listing.manifest.files.size()) << "Fork() returned nullptr";
  for (const std::string& r : whole) EXPECT_THAT(r, ::testing::EndsWith(": ")) << "whole";
  for (const std::string& r : ranged) EXPECT_THAT(r, ::testing::EndsWith(": ")) << "ranges";
  EXPECT_EQ(fork_url, source->url());
  EXPECT_EQ(fork_repo, source->repo());

  // A fork of a fork, on this thread, serves the same too.
  std::unique_ptr<Source> fork = source->Fork();
  ASSERT_NE(fork, nullptr);
  std::unique_ptr<Source> grandchild = fork->Fork();
  ASSERT_NE(grandchild, nullptr);
  ExpectEveryEntryStreams(grandchild.get(), listing.manifest, listed);
}

TEST_P(SourceConformanceTest, ContentNoEntryNamesIsAnError) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing listing = CommitAndList(source.get(), FirstFiles());
  const std::string revision = listing.manifest.revision;
  // Made up: what it is, where it would be, and what the source would know
  // of it (none, a git blob, a Git LFS object).
  const std::string sha256 = Sha256Hex("no revision lists this");
  const std::string blob = std::string(40, '7');
  const std::vector<ContentRef> missing = {
      {sha256, 1000, revision, "nowhere/missing.bin", {}},
      {sha256, 1000, revision, "nowhere/missing.bin", {{"blob", blob}}},
      {sha256, 1000, revision, "nowhere/missing.safetensors", {{"blob", blob}, {"lfs", "true"}}},
  };
  for (const ContentRef& content : missing) {
    const std::string what = content.path + " " + ProvenanceToJson(content.provenance);
    // The message must say which content on which source: a user can act on it.
    auto expect_named = [&](const Status& s) {
      EXPECT_FALSE(s.ok()) << what;
      EXPECT_EQ(s.code(), Status::Code::kNotFound) << what << ": " << s.ToString();
      const std::string m = s.ToString();
      EXPECT_TRUE(m.find(content.sha256) != std::string::npos ||
                  m.find(content.path) != std::string::npos || m.find(blob) != std::string::npos)
          << what << ": " << m;
      EXPECT_THAT(m, HasSubstr(harness_->Where())) << what;
    };
    RecordingSink sink;
    expect_named(source->FetchContent(content, 0, &sink));
    expect_named(source->FetchContent(content, 500, &sink));
    RangeCollector got(content.size);
    expect_named(source->FetchContentRanges(content, {{0, 10}, {990, 10}}, got.sink()));
  }
}

TEST_P(SourceConformanceTest, SignaturesAndDeltasAreServedAsTheManifestListsThem) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing first = CommitAndList(source.get(), FirstFiles());
  RevisionListing second = CommitAndList(source.get(), SecondFiles());
  const ManifestEntry* old_weights = Find(first.manifest, "model.safetensors");
  const ManifestEntry* weights = Find(second.manifest, "model.safetensors");
  ASSERT_NE(old_weights, nullptr);
  ASSERT_NE(weights, nullptr);

  if (!harness_->PublishesDeltas()) {
    for (const Manifest* m : {&first.manifest, &second.manifest}) {
      for (const ManifestEntry& e : m->files) {
        EXPECT_FALSE(e.signature.present()) << e.path;
        EXPECT_TRUE(e.deltas.empty()) << e.path;
      }
    }
    RecordingSink sink;
    const SignatureRef signature{2048, 16, 1000, std::string(64, 'a')};
    Status s = source->FetchSignature(weights->sha256, signature, &sink);
    EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
    EXPECT_THAT(s.ToString(), HasSubstr(source->url()));
    const DeltaRef delta{old_weights->sha256, 1000, std::string(64, 'b')};
    s = source->FetchDelta(weights->sha256, delta, &sink);
    EXPECT_EQ(s.code(), Status::Code::kUnsupported) << s.ToString();
    EXPECT_THAT(s.ToString(), HasSubstr(source->url()));
    return;
  }

  // Both revisions sign the large file; the second has a delta from the
  // first's content. Each comes as its ref describes it, and works.
  const auto old_listed = harness_->Listed(FirstFiles());
  const auto new_listed = harness_->Listed(SecondFiles());
  const std::string& old_content = old_listed.at("model.safetensors");
  const std::string& new_content = new_listed.at("model.safetensors");
  for (const ManifestEntry* e : {old_weights, weights}) {
    ASSERT_TRUE(e->signature.present()) << "a file of " << e->size << " bytes is signed";
    WholeFileSink sig;
    Status s = source->FetchSignature(e->sha256, e->signature, &sig);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(sig.data.size(), e->signature.size);
    EXPECT_EQ(Sha256Hex(sig.data), e->signature.sha256);
    // A signature of this content: its blocks cover the content's size.
    auto loaded = Signature::Load(sig.data);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->block_len(), e->signature.block_len);
    EXPECT_EQ(loaded->strong_len(), e->signature.strong_len);
    EXPECT_EQ(loaded->block_count(),
              (e->size + e->signature.block_len - 1) / e->signature.block_len);
    EXPECT_THAT(source->SignatureLocation(e->sha256, e->signature), HasSubstr(harness_->Where()));
  }
  ASSERT_EQ(weights->deltas.size(), 1u) << "one earlier revision";
  const DeltaRef& delta = weights->deltas[0];
  EXPECT_EQ(delta.from_sha256, old_weights->sha256);
  WholeFileSink got;
  Status s = source->FetchDelta(weights->sha256, delta, &got);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(got.data.size(), delta.size);
  EXPECT_EQ(Sha256Hex(got.data), delta.sha256);
  EXPECT_LT(got.data.size(), kLargeSize / 10) << "a few KiB changed";
  std::string patched;
  StringFile basis(old_content);
  s = ApplyDelta(basis, old_content.size(), got.data, [&](const char* d, size_t n) {
    patched.append(d, n);
    return Status::OK();
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Diff(patched, new_content), "");
  EXPECT_THAT(source->DeltaLocation(weights->sha256, delta), HasSubstr(harness_->Where()));

  // What the manifest does not list is not there.
  WholeFileSink none;
  s = source->FetchSignature(Sha256Hex("unlisted"), weights->signature, &none);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
  s = source->FetchDelta(old_weights->sha256, {weights->sha256, 10, std::string(64, 'c')}, &none);
  EXPECT_EQ(s.code(), Status::Code::kNotFound) << s.ToString();
}

TEST_P(SourceConformanceTest, ContentLocationNamesTheSource) {
  auto source = NewSource();
  ASSERT_NE(source, nullptr);
  RevisionListing listing = CommitAndList(source.get(), FirstFiles());
  std::unique_ptr<Source> fork = source->Fork();
  ASSERT_NE(fork, nullptr);
  ASSERT_FALSE(harness_->Where().empty());
  for (const ManifestEntry& e : listing.manifest.files) {
    const ContentRef content = ContentOf(listing.manifest, e);
    const std::string where = source->ContentLocation(content);
    EXPECT_THAT(where, HasSubstr(harness_->Where())) << e.path;
    EXPECT_EQ(fork->ContentLocation(content), where) << e.path;
  }
  ASSERT_FALSE(source->url().empty());
  EXPECT_NE(source->url().back(), '/') << source->url();
  EXPECT_EQ(source->repo(), kRepo);
}

// Source::Poll: a repository the source does not have is kNotFound, where
// the kind can tell; to libgit2 a git remote that does not exist is an
// unreachable remote (kNetwork), and the message must name it.
TEST_P(SourceConformanceTest, PollOfARepositoryTheOriginDoesNotHaveIsNotFound) {
  harness_->Commit(FirstFiles());
  auto source = NewSource(kMissingRepo);
  ASSERT_NE(source, nullptr);
  auto poll = source->Poll(nullptr);
  ASSERT_FALSE(poll.ok()) << "polled " << poll->revision;
  if (GetParam() == Kind::kGitLocal || GetParam() == Kind::kGitHttp) {
    EXPECT_EQ(poll.status().code(), Status::Code::kNetwork) << poll.status().ToString();
    EXPECT_THAT(poll.status().ToString(), ::testing::HasSubstr(source->url()));
  } else {
    EXPECT_EQ(poll.status().code(), Status::Code::kNotFound) << poll.status().ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(AllSources, SourceConformanceTest,
                         ::testing::Values(Kind::kFile, Kind::kNginx, Kind::kStaticServer,
                                           Kind::kGitLocal, Kind::kGitHttp, Kind::kHub),
                         KindName);

}  // namespace
}  // namespace sync_agent
