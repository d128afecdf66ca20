// ObjectFetcher: obtains one new content (an object of the target revision
// that the node's store lacks) the cheapest way it can verify:
//
//   1. delta   a published librsync delta whose base the node holds:
//              download it, check its sha256, patch the base;
//   2. ranges  roll a local candidate (the same path's old content, ...)
//              against the new file's published signature, copy the blocks
//              found, fetch the missing ranges with multi-range requests;
//   3. whole   download the file (resuming a partial download).
//
// Each way is tried only if its estimated cost in bytes is below the next
// one's; when one fails (corrupt delta or signature, a result that does not
// hash to the manifest's sha256, a server without range support) the next
// is tried and the reason is kept in the outcome's note. Whatever the way,
// the bytes go through ObjectDownload, which verifies size, sha256 and
// xxh3-128 before the object enters the store. Cancellation and a full disk
// stop at once; they are not reasons to fall back.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/base/cancel.h"
#include "common/base/status.h"
#include "common/manifest/manifest.h"
#include "common/source/source.h"
#include "common/sync/sync_plan.h"
#include "common/transfer/chunked_download.h"
#include "common/transfer/source_set.h"

namespace sync_agent {

class ObjectStore;

// A content the node holds that may share blocks with the new one.
struct LocalCandidate {
  std::string sha256;
  std::string why;  // "same path in revision r1", for notes and logs
};

struct FetchOutcome {
  FetchMethod method = FetchMethod::kWhole;
  std::string basis_sha256;    // delta, ranges
  uint64_t bytes_fetched = 0;  // over the network, all attempts included
  uint64_t bytes_reused = 0;   // of the new content, from local content
  std::string note;            // why cheaper ways were not used
  std::string xxh3_128;        // what the stored object hashed to
};

struct ObjectFetcherOptions {
  int match_threads = 2;  // threads rolling a candidate against a signature
  // Ranges closer than this are fetched as one (the bytes between are cheaper
  // than another multipart header).
  uint64_t range_gap = 512;
  size_t max_ranges_per_request = 64;
  const CancelFlag* cancel = nullptr;
  // Called with the bytes of a whole-file download now on disk.
  std::function<void(uint64_t)> progress;
  // Called from any thread with every piece of a whole-file download received.
  std::function<void(uint64_t)> on_bytes;
  // Whole files of at least kMinChunkedBytes are fetched in chunks over
  // several connections from these sources (all serving the revision), when
  // set and the source answers ranges; others as one stream.
  SourceSet* sources = nullptr;
  ConnectionBudget* budget = nullptr;
  int connections_per_file = 16;
  // A download as one stream that fails on the network is resumed this many
  // times in the run, after a backoff.
  RetryPolicy retry;
};

// Whole files from this size on are downloaded in chunks.
inline constexpr uint64_t kMinChunkedBytes = 8ULL << 20;

class ObjectFetcher {
 public:
  // store, source must outlive the fetcher. repo names the repository at the source.
  ObjectFetcher(ObjectStore* store, Source* source, std::string repo, ObjectFetcherOptions options);

  // entry: the manifest entry that names this content (signature, deltas);
  // content: what the source is asked for (ContentOf the entry).
  // candidates: local contents to match against, best first.
  Result<FetchOutcome> Fetch(const ObjectFetch& object, const ManifestEntry& entry,
                             const ContentRef& content,
                             const std::vector<LocalCandidate>& candidates);

 private:
  Status TryDelta(const ObjectFetch& object, const DeltaRef& delta, FetchOutcome* outcome);
  Status FetchSignature(const ObjectFetch& object, const ManifestEntry& entry,
                        std::string* signature, FetchOutcome* outcome);
  // allow_aligned: large candidates may be matched with MatchAligned (weak
  // sums only; *used_aligned tells); otherwise MatchSignature.
  Status TryRanges(const ObjectFetch& object, const ContentRef& content, const SignatureRef& ref,
                   const std::string& signature, const LocalCandidate& candidate,
                   uint64_t whole_cost, bool allow_aligned, FetchOutcome* outcome,
                   bool* not_worth_it, bool* used_aligned);
  Status FetchWhole(const ObjectFetch& object, const ContentRef& content, FetchOutcome* outcome);
  bool Cancelled() const;

  ObjectStore* store_;
  Source* source_;
  std::string repo_;
  ObjectFetcherOptions options_;
};

}  // namespace sync_agent
