// A Source is where one repository's revisions come from, whatever its kind:
// a publish root over HTTP(S) or on the local file system
// (common/source/publish_root_source.h), a git remote with Git LFS
// (common/git/git_source.h), a Hugging Face-compatible hub
// (common/hub/hub_source.h). Kinds are registered in one place
// (common/registry/source_kinds.h), and one conformance suite
// (tests/source) runs over all of them.
//
// Every kind answers the same questions:
//   Poll           which revision does it serve now? (cheap; conditional)
//   FetchRevision  that revision's manifest, checked and validated
//   FetchContent   a content by what it is (sha256 and size, ContentRef),
//                  from an offset, or FetchContentRanges for byte ranges
// and may offer optional extras: librsync signatures of contents and deltas
// between them (publish roots do; git and hubs do not).
//
// The source checks what it can of its own answers (a publish root checks
// the manifest against its pointer's sha256); the engine verifies every
// content against the manifest's sha256 and size before it is stored.
//
// Thread safety: a Source is used by one thread at a time; Fork() makes one
// for another thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/byte_sink.h"
#include "common/base/cancel.h"
#include "common/base/status.h"
#include "common/http/http_client.h"
#include "common/manifest/manifest.h"

namespace sync_agent {

class Env;
class RateLimiter;

// What the last poll saw, used to make the next poll conditional. Each kind
// keeps what it needs (an ETag, a commit id).
struct PollValidators {
  std::string etag;
  std::string last_modified;
  std::string digest;  // sha256 of what was read (a publish root: the pointer's bytes)
};

struct PollResult {
  // The source said nothing changed since the validators it was given; the
  // other fields but validators are empty.
  bool not_modified = false;
  std::string revision;  // the revision the source serves now
  // Identifies the revision's content: the manifest's sha256 (publish
  // roots), the commit id (git, hub). Sources whose polls agree on revision
  // and fingerprint serve the same files and may share one transfer.
  std::string fingerprint;
  PollValidators validators;  // to remember for the next poll
};

// A revision as a source lists it.
struct RevisionListing {
  Manifest manifest;            // validated; its repo and revision are the ones asked for
  std::string manifest_sha256;  // of the manifest's bytes (recorded with the revision)
};

// A content to fetch: what it is (sha256, size), and where the revision
// being synced holds it, for the kinds that address content by place (git:
// the blob in provenance; a hub: the path at the commit). Publish roots
// address content by sha256 alone.
struct ContentRef {
  std::string sha256;
  uint64_t size = 0;
  std::string revision;   // the revision that lists it
  std::string path;       // a path it has in that revision
  Provenance provenance;  // that entry's provenance
};

// The ContentRef of a manifest entry.
ContentRef ContentOf(const Manifest& manifest, const ManifestEntry& entry);

class Source {
 public:
  virtual ~Source() = default;
  // The source as configured, e.g. "http://origin/models" (no trailing slash).
  virtual const std::string& url() const = 0;
  // The repository this source serves ("org/name").
  virtual const std::string& repo() const = 0;

  // Which revision the source serves now. When prev is given and the source
  // can tell nothing changed (HTTP 304, the same commit), not_modified.
  // A repository the source does not have is kNotFound, where the kind can
  // tell (a git remote that does not exist is an unreachable remote to
  // libgit2: kNetwork, naming it).
  virtual Result<PollResult> Poll(const PollValidators* prev) = 0;
  // The manifest of the revision a Poll of this source returned (poll), checked
  // by the source against what vouches for it, validated, and naming this
  // repository and revision (kInvalidArgument otherwise).
  virtual Result<RevisionListing> FetchRevision(const PollResult& poll) = 0;

  // Streams the content from offset to its end into sink (sink->Begin()
  // says where the data starts). A content the source does not have is
  // kNotFound; transport failures kNetwork.
  virtual Status FetchContent(const ContentRef& content, uint64_t offset, ObjectSink* sink) = 0;

  // Fetches the given ranges of the content, in as few requests as the
  // source allows (HTTP: one Range header with all of them; the answer is
  // multipart/byteranges, or a single 206 part when one range was asked or
  // the server merged them; more than 200 ranges (kMaxRangesPerRequest) or
  // a Range header over 4 KiB take several requests). ranges must be
  // sorted, non-overlapping and non-empty, inside [0, content.size) (else
  // kInvalidArgument); none is OK and does nothing.
  //
  // sink receives every byte of every range at least once, each call's data
  // being the content's bytes from `offset` on; within one response, calls
  // come in the order the server sent the parts (ascending for nginx). Bytes
  // outside the ranges may be delivered too (a server may merge nearby
  // ranges). Ranges the server left out of its answer are asked for again in
  // follow-up requests, which may start below offsets already delivered.
  //
  // Errors: kUnsupported when the server ignores Range (answers 200: the body
  // is not read) or its answer cannot be understood as ranges of this content
  // (the message says how), including an answer that holds none of the
  // bytes still missing; kCorruption when the content's size is not
  // content.size (on disk, in a Content-Range, in a 416); kNotFound for a
  // missing content; kNetwork for transport failures, truncated answers and
  // other statuses; kCancelled when options.cancel is set; a failing sink's
  // status as is. On an error the sink may have received some of the ranges.
  virtual Status FetchContentRanges(const ContentRef& content, const std::vector<ByteRange>& ranges,
                                    const RangeSink& sink) = 0;

  // Where a content is read from, for messages and records.
  virtual std::string ContentLocation(const ContentRef& content) const = 0;

  // Whether fetching ranges of this content over several connections at
  // once can beat one stream: false for content the source reads from local
  // disk (a git blob, a local remote's LFS object), where chunks would only
  // read it several times.
  virtual bool ChunksHelp(const ContentRef& content) const { return true; }

  // Optional extras. A librsync signature of a content (described by the
  // manifest entry's SignatureRef), and a librsync delta from one content to
  // another (DeltaRef), streamed whole into sink. Kinds that publish none
  // keep these defaults: kUnsupported.
  virtual Status FetchSignature(const std::string& content_sha256, const SignatureRef& signature,
                                ObjectSink* sink);
  virtual Status FetchDelta(const std::string& to_sha256, const DeltaRef& delta, ObjectSink* sink);
  virtual std::string SignatureLocation(const std::string& content_sha256,
                                        const SignatureRef& signature) const;
  virtual std::string DeltaLocation(const std::string& to_sha256, const DeltaRef& delta) const;

  // The signature document of a revision a Poll returned
  // (schema/signature_format.md), as served, unchecked; nullopt when this
  // source has none for it. Kinds that carry no signatures keep the
  // default: kUnsupported. Where it is read from, for messages.
  virtual Result<std::optional<std::string>> FetchRevisionSignatures(const PollResult& poll);
  virtual std::string RevisionSignaturesLocation(const std::string& revision) const;

  // For parallel transfers: a new Source with its own connections that
  // serves what this one serves. May be called while another thread uses
  // this source.
  virtual std::unique_ptr<Source> Fork() const = 0;
};

// What the node holds already, for kinds that know a content only by its
// git blob id until they read it (a hub lists regular files that way): an
// unchanged file is then not downloaded again just to learn its sha256.
struct HeldDigest {
  std::string sha256;
  std::string xxh3_128;
  uint64_t size = 0;
};
class HeldContent {
 public:
  virtual ~HeldContent() = default;
  // A content in the node's object store that a revision listed with this
  // git blob id (not a Git LFS pointer's), or nullopt.
  virtual std::optional<HeldDigest> FindByBlob(const std::string& blob) const = 0;
};

// How sources connect; the same for every kind.
struct SourceOptions {
  std::chrono::milliseconds io_timeout{60000};  // no byte for this long: the request fails
  // A body slower than this (bytes/s, 0: no minimum) on average over
  // low_speed_time fails its request (http_low_speed_limit, _time).
  uint64_t low_speed_limit = 1024;
  std::chrono::milliseconds low_speed_time{60000};
  const CancelFlag* cancel = nullptr;
  // What a revision's manifest may hold; a larger one fails naming the limit.
  ManifestLimits manifest_limits;
  // Authorization header value for the source's own origin ("" for none);
  // for a git source also its Git LFS server. Never sent to another host
  // after a redirect.
  std::string authorization;
  std::string ca_file;             // CA certificates for https; empty: the system's
  RateLimiter* limiter = nullptr;  // the agent's bandwidth cap; outlives the source
  // Idle connections shared with the process's other sources; outlives the source.
  SharedConnections* connections = nullptr;
  Env* env = nullptr;  // for sources that read or keep files (nullptr: the default)
  // Where a source kind may keep its caches (a git source: bare clones
  // under <state_dir>/git/). Empty: the kind's caches are not available.
  std::string state_dir;
  // What the node holds (nullptr: nothing known); outlives the source. Only
  // called from the thread that uses the source.
  const HeldContent* held = nullptr;
};

// The HTTP client options every kind's connections share: the timeouts, the
// minimum rate, the CA file and the bandwidth cap. The authorization is left
// to the kind, which knows which origin it belongs to.
HttpClientOptions HttpOptionsFor(const SourceOptions& options);

}  // namespace sync_agent
