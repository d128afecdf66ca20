// A Source is where a repository's revisions come from: a publish root
// reached over HTTP(S) (HttpSource) or on the local file system (FileSource),
// or a git remote with Git LFS (GitSource, which presents each commit as a
// published revision would look).
// Every kind offers the same three reads, so the sync engine does not care
// which one it talks to, and one conformance suite (tests/source) runs over
// all of them.
//
// Thread safety: a Source is used by one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/status.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

class Env;
class RateLimiter;
struct HttpClientOptions;

// What the last poll saw, used to make the next poll conditional.
struct PointerValidators {
  std::string etag;
  std::string last_modified;
  std::string pointer_sha256;
};

struct PointerFetch {
  bool not_modified = false;     // the source said nothing changed since validators
  std::string body;              // the pointer's bytes (empty when not_modified)
  PointerValidators validators;  // to remember for the next poll
};

// Receives an object's bytes. The source calls Begin() once before any data
// with the offset the data starts at: the requested offset when the source
// honours it, 0 when it sends the whole object again (the sink must then
// discard what it had).
class ObjectSink {
 public:
  virtual ~ObjectSink() = default;
  virtual Status Begin(uint64_t offset) = 0;
  virtual Status Write(const char* data, size_t n) = 0;
};

// Receives ranged data: n bytes of the file starting at offset.
using RangeSink = std::function<Status(uint64_t offset, const char* data, size_t n)>;

class Source {
 public:
  virtual ~Source() = default;
  // The publish root as configured, e.g. "http://origin/models" (no trailing slash).
  virtual const std::string& root() const = 0;

  // Reads "<root>/<repo>/latest". When prev is given and the source can tell
  // nothing changed (HTTP 304, same bytes on disk), returns not_modified.
  virtual Result<PointerFetch> FetchPointer(const std::string& repo,
                                            const PointerValidators* prev) = 0;
  // Reads a revision's manifest bytes (not yet verified or parsed).
  virtual Result<std::string> FetchManifest(const std::string& repo,
                                            const std::string& revision) = 0;
  // Streams the object with this sha256 from offset to its end into sink.
  // (FetchFile of PublishedObjectPath(sha256).)
  Status FetchObject(const std::string& repo, const std::string& sha256, uint64_t offset,
                     ObjectSink* sink) {
    return FetchFile(repo, PublishedObjectPath(sha256), offset, sink);
  }
  // Where an object is read from, for messages and records.
  std::string ObjectLocation(const std::string& repo, const std::string& sha256) const {
    return FileLocation(repo, PublishedObjectPath(sha256));
  }

  // Streams the published file "<root>/<repo>/<rel_path>" (an object, a
  // signature, a delta) from offset to its end into sink, as FetchObject.
  // A missing file is kNotFound.
  virtual Status FetchFile(const std::string& repo, const std::string& rel_path, uint64_t offset,
                           ObjectSink* sink) = 0;

  // Fetches the given ranges of a published file whose full size is
  // file_size, in one request where the server allows (HTTP: one Range
  // header with all of them; the answer is multipart/byteranges, or a single
  // 206 part when one range was asked or the server merged them; more than
  // 200 ranges (kMaxRangesPerRequest) or a Range header over 4 KiB take
  // several requests). ranges must be sorted, non-overlapping and non-empty, inside
  // [0, file_size) (else kInvalidArgument); none is OK and does nothing.
  //
  // sink receives every byte of every range at least once, each call's data
  // being the file's bytes from `offset` on; within one response, calls come
  // in the order the server sent the parts (ascending for nginx). Bytes
  // outside the ranges may be delivered too (a server may merge nearby
  // ranges). Ranges the server left out of its answer are asked for again in
  // follow-up requests, which may start below offsets already delivered.
  //
  // Errors: kUnsupported when the server ignores Range (answers 200: the body
  // is not read) or its answer cannot be understood as ranges of this file
  // (the message says how), including an answer that holds none of the
  // bytes still missing; kCorruption when the file's size is not file_size
  // (on disk, in a Content-Range, in a 416); kNotFound for a missing file;
  // kNetwork for transport failures, truncated answers and other statuses;
  // kCancelled when options.cancel is set; a failing sink's status as is.
  // On an error the sink may have received some of the ranges.
  virtual Status FetchRanges(const std::string& repo, const std::string& rel_path,
                             uint64_t file_size, const std::vector<ByteRange>& ranges,
                             const RangeSink& sink) = 0;

  // Where a published file is read from, for messages and records.
  virtual std::string FileLocation(const std::string& repo, const std::string& rel_path) const = 0;

  // Whether fetching ranges of this object over several connections at once
  // can beat one stream: false for content the source reads from local disk
  // (a git blob, a local remote's LFS object), where chunks would only read
  // it several times.
  virtual bool ChunksHelp(const std::string& sha256) const { return true; }
  // For parallel transfers: a new Source with its own connections that serves
  // what this one serves, or nullptr when one made for the same URL does
  // (publish roots). A git source forks: its objects are those of the commit
  // it polled. May be called while another thread uses this source.
  virtual std::unique_ptr<Source> Fork() const { return nullptr; }
};

// For a git remote (common/git/git_source.h).
struct GitSourceOptions {
  std::string ref;        // not empty: the URL is a git remote, this the ref to follow
  std::string cache_dir;  // its bare cache, created on first use
};

struct SourceOptions {
  std::chrono::milliseconds io_timeout{60000};  // no byte for this long: the request fails
  const std::atomic<bool>* cancel = nullptr;
  // Authorization header value for the source's own origin ("" for none);
  // for a git source also its Git LFS server.
  std::string authorization;
  std::string ca_file;              // CA certificates for https; empty: the system's
  RateLimiter* limiter = nullptr;   // the agent's bandwidth cap; outlives the source
  GitSourceOptions git;
};

// Makes the Source for a configured URL: a publish root (http://, https://,
// file:///abs), or a git remote when options.git.ref is set.
Result<std::unique_ptr<Source>> MakeSource(const std::string& url, Env* env,
                                           const SourceOptions& options);

}  // namespace sync_agent
