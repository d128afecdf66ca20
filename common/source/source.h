// A Source is where a repository's revisions come from. Today: a publish root
// reached over HTTP(S) (HttpSource) or on the local file system (FileSource).
// Every kind offers the same three reads, so the sync engine does not care
// which one it talks to, and one conformance suite (tests/source) runs over
// all of them.
//
// Thread safety: a Source is used by one thread at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/base/status.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

class Env;
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
  virtual Status FetchObject(const std::string& repo, const std::string& sha256, uint64_t offset,
                             ObjectSink* sink) = 0;
  // Where an object is read from, for messages and records.
  virtual std::string ObjectLocation(const std::string& repo, const std::string& sha256) const = 0;
};

struct SourceOptions {
  std::chrono::milliseconds io_timeout{60000};
  const std::atomic<bool>* cancel = nullptr;
};

// Makes the Source for a configured URL (http://, https://, file:///abs).
Result<std::unique_ptr<Source>> MakeSource(const std::string& url, Env* env,
                                           const SourceOptions& options);

}  // namespace sync_agent
