// ChunkedDownload: one object fetched as fixed-size chunks over several
// connections at once, from one or several sources that serve the same
// revision, into the store's partial file (positional writes), then verified
// whole (size, sha256, xxh3-128) and moved into the store.
//
// Resume is per chunk: a chunk whose bytes are written back to disk is listed
// in "<partial>.ranges" and not fetched again by a later run, after a crash
// or SIGKILL. Within a run, a request that fails part-way keeps what it
// received: the rest of its chunk is asked for again, from the same or
// another source, after a backoff of the failing one (SourceSet). A stalled
// connection is one that times out (http_timeout without a byte) or falls
// below the minimum rate (http_low_speed_limit); an attempt counts towards
// the chunk's retry_attempts unless it received at least 1 MiB, so a source
// that trickles fails the download instead of being retried forever.
//
// The record's format: a first line "sync-agent-ranges 1 <size> <chunk bytes>",
// then one line per completed chunk with its index. A record that does not
// match the object is discarded with the partial file.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "common/base/cancel.h"
#include "common/base/status.h"
#include "common/source/source.h"
#include "common/store/object_store.h"
#include "common/transfer/source_set.h"

namespace sync_agent {

// Bounds the connections of every transfer of a run together.
class ConnectionBudget {
 public:
  explicit ConnectionBudget(int total) : free_(total) {}
  // Blocks until a connection may be opened; false if *cancel became true.
  bool Acquire(const CancelFlag* cancel);
  void Release();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

struct ChunkedDownloadOptions {
  int connections = 16;      // at most this many requests at once for this object
  uint64_t chunk_bytes = 0;  // 0: ChunkBytesFor(size)
  ConnectionBudget* budget = nullptr;
  const CancelFlag* cancel = nullptr;
  // Called from transfer threads with every piece of body received.
  std::function<void(uint64_t bytes)> on_bytes;
};

struct ChunkedDownloadResult {
  uint64_t bytes_fetched = 0;  // over the network in this run
  uint64_t resumed_bytes = 0;  // chunks a previous run had completed
  ContentDigest digest;
};

// The chunk size for an object: about 1/256 of it, 4 to 64 MiB, whole MiB.
uint64_t ChunkBytesFor(uint64_t size);

// Bytes of the object a partial download already holds: the completed chunks
// of a download in chunks (its partial file is sparse), else the partial
// file's size (at most size).
uint64_t PartialBytesHeld(ObjectStore* store, const std::string& sha256, uint64_t size);

// Turns a partial download in chunks into a sequential one: keeps the
// completed chunks from the start on, drops the rest and the record. For a
// download that continues as one stream.
Status ChunksToSequentialPartial(ObjectStore* store, const std::string& sha256, uint64_t size);

class ChunkedDownload {
 public:
  // store, sources outlive the object. repo: the repository, for logs;
  // content: what the sources are asked for (its sha256 and size are
  // object's).
  ChunkedDownload(ObjectStore* store, SourceSet* sources, std::string repo, ContentRef content,
                  ObjectDownload::Expected object, std::string what,
                  ChunkedDownloadOptions options);

  // Downloads what is missing and moves the verified object into the store.
  // kUnsupported when no source answers range requests (the caller may
  // download the object as one stream); kCorruption when the assembled
  // object does not match (partial and record are removed); otherwise the
  // last error of the chunk that ran out of attempts or sources.
  Result<ChunkedDownloadResult> Run();

 private:
  struct State;
  Status Work(State* st);
  // Verifies the whole object and moves it into the store.
  Status Finish(State* st, ContentDigest* digest);

  ObjectStore* store_;
  SourceSet* sources_;
  std::string repo_;
  ContentRef content_;
  ObjectDownload::Expected object_;
  std::string what_;
  ChunkedDownloadOptions options_;
};

}  // namespace sync_agent
