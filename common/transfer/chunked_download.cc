#include "common/transfer/chunked_download.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/base/kill_point.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/http/http_text.h"
#include "common/manifest/manifest.h"

namespace sync_agent {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr const char* kRecordMagic = "sync-agent-ranges 1";
constexpr size_t kHashReadBytes = 1 << 20;
// A failed range request that received at least this much is not counted
// as one of the chunk's attempts.
constexpr uint64_t kProgressBytes = 1 * kMiB;

struct Record {
  uint64_t size = 0;
  uint64_t chunk_bytes = 0;
  std::vector<size_t> done;
};

// Reads "<partial>.ranges"; nullopt when absent or not a record of this shape.
std::optional<Record> ReadRecord(Env* env, const std::string& path) {
  auto text = ReadFileToString(env, path, 64 * kMiB);
  if (!text.ok()) return std::nullopt;
  Record r;
  size_t nl = text->find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::string header = text->substr(0, nl);
  const std::string magic = std::string(kRecordMagic) + " ";
  if (header.rfind(magic, 0) != 0) return std::nullopt;
  unsigned long long size = 0, chunk = 0;
  if (std::sscanf(header.c_str() + magic.size(), "%llu %llu", &size, &chunk) != 2 || chunk == 0) {
    return std::nullopt;
  }
  r.size = size;
  r.chunk_bytes = chunk;
  // Complete lines only: a line cut short by a crash is not a record.
  for (size_t at = nl + 1; at < text->size();) {
    size_t end = text->find('\n', at);
    if (end == std::string::npos) break;
    uint64_t index = 0;
    if (ParseDecimal(std::string_view(*text).substr(at, end - at), &index)) r.done.push_back(index);
    at = end + 1;
  }
  return r;
}

}  // namespace

bool ConnectionBudget::Acquire(const CancelFlag* cancel) {
  // A stop wakes the wait (the hook is made before mu_ is taken; see Hook).
  CancelFlag::Hook wake(cancel, [this] {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return free_ > 0 || (cancel != nullptr && cancel->load()); });
  if (free_ <= 0) return false;
  --free_;
  return true;
}

void ConnectionBudget::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++free_;
  }
  cv_.notify_one();
}

uint64_t ChunkBytesFor(uint64_t size) {
  uint64_t chunk = (size / 256 + kMiB - 1) / kMiB * kMiB;
  return std::clamp<uint64_t>(chunk, 4 * kMiB, 64 * kMiB);
}

uint64_t PartialBytesHeld(ObjectStore* store, const std::string& sha256, uint64_t size) {
  const std::string record_path = store->RangesPath(sha256);
  if (!store->env()->Stat(record_path).ok()) {
    return std::min(store->PartialSize(sha256), size);
  }
  auto record = ReadRecord(store->env(), record_path);
  if (!record || record->size != size) return 0;
  std::set<size_t> done(record->done.begin(), record->done.end());
  uint64_t held = 0;
  for (size_t i : done) {
    uint64_t begin = static_cast<uint64_t>(i) * record->chunk_bytes;
    if (begin < size) held += std::min(record->chunk_bytes, size - begin);
  }
  return held;
}

Status ChunksToSequentialPartial(ObjectStore* store, const std::string& sha256, uint64_t size) {
  Env* env = store->env();
  const std::string record_path = store->RangesPath(sha256);
  if (!env->Stat(record_path).ok()) return Status::OK();
  uint64_t prefix = 0;
  auto record = ReadRecord(env, record_path);
  if (record && record->size == size) {
    std::vector<bool> done((size + record->chunk_bytes - 1) / record->chunk_bytes, false);
    for (size_t i : record->done) {
      if (i < done.size()) done[i] = true;
    }
    size_t i = 0;
    while (i < done.size() && done[i]) ++i;
    prefix = std::min(size, static_cast<uint64_t>(i) * record->chunk_bytes);
  }
  if (env->LstatAt(store->PartialAt(sha256)).ok()) {
    SA_RETURN_IF_ERROR(env->TruncateAt(store->PartialAt(sha256), prefix));
  }
  return env->RemoveFileAt(store->RangesAt(sha256));
}

struct ChunkedDownload::State {
  struct Chunk {
    uint64_t begin = 0;
    uint64_t end = 0;
    uint64_t next = 0;  // first byte not yet received
    int failures = 0;
  };
  uint64_t chunk_bytes = 0;
  std::vector<Chunk> chunks;
  std::unique_ptr<RandomWriteFile> file;
  std::unique_ptr<WritableFile> record;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<size_t> pending;
  std::vector<bool> done;
  size_t in_flight = 0;
  bool stop = false;
  Status error;
  std::vector<bool> excluded;  // per source: cannot serve this object
  std::vector<bool> no_ranges;
  Status last_source_error;

  std::atomic<uint64_t> fetched{0};
  // The hasher follows the completed chunks from the start.
  size_t hashed = 0;
  ContentHasher hasher;
  Status hash_error;

  void Fail(Status s) {
    if (error.ok()) error = std::move(s);
    stop = true;
    cv.notify_all();
  }
};

ChunkedDownload::ChunkedDownload(ObjectStore* store, SourceSet* sources, std::string repo,
                                 ContentRef content, ObjectDownload::Expected object,
                                 std::string what, ChunkedDownloadOptions options)
    : store_(store),
      sources_(sources),
      repo_(std::move(repo)),
      content_(std::move(content)),
      object_(std::move(object)),
      what_(std::move(what)),
      options_(std::move(options)) {}

Result<ChunkedDownloadResult> ChunkedDownload::Run() {
  Env* env = store_->env();
  const std::string partial = store_->PartialPath(object_.sha256);
  const std::string record_path = store_->RangesPath(object_.sha256);
  State st;
  st.chunk_bytes = options_.chunk_bytes != 0 ? options_.chunk_bytes : ChunkBytesFor(object_.size);
  const size_t count = static_cast<size_t>((object_.size + st.chunk_bytes - 1) / st.chunk_bytes);
  st.done.assign(count, false);
  for (size_t i = 0; i < count; ++i) {
    uint64_t b = i * st.chunk_bytes;
    st.chunks.push_back({b, std::min(object_.size, b + st.chunk_bytes), b, 0});
  }

  // What earlier runs completed.
  std::optional<Record> record = ReadRecord(env, record_path);
  bool fresh_record = true;
  if (record && record->size == object_.size && record->chunk_bytes == st.chunk_bytes &&
      env->Stat(partial).ok()) {
    for (size_t i : record->done) {
      if (i < count) st.done[i] = true;
    }
    fresh_record = false;
  } else {
    if (record) {
      LogInfo("discarding a partial download recorded with other chunks",
              {{"object", object_.sha256}});
      SA_RETURN_IF_ERROR(store_->RemovePartial(object_.sha256));
    } else if (env->Stat(record_path).ok()) {
      SA_RETURN_IF_ERROR(store_->RemovePartial(object_.sha256));  // unreadable record
    }
    // A download that went as one stream so far: its whole chunks count.
    uint64_t have = store_->PartialSize(object_.sha256);
    if (have > object_.size) {
      SA_RETURN_IF_ERROR(store_->RemovePartial(object_.sha256));
      have = 0;
    }
    for (size_t i = 0; i < count && st.chunks[i].end <= have; ++i) st.done[i] = true;
  }
  SA_ASSIGN_OR_RETURN(st.file, env->NewRandomWriteFileAt(store_->PartialAt(object_.sha256), 0600));
  if (fresh_record) {
    SA_ASSIGN_OR_RETURN(st.record, env->NewWritableFileAt(store_->RangesAt(object_.sha256), 0600,
                                                          WriteOpen::kTruncate));
    std::string text = std::string(kRecordMagic) + " " + std::to_string(object_.size) + " " +
                       std::to_string(st.chunk_bytes) + "\n";
    for (size_t i = 0; i < count; ++i) {
      if (st.done[i]) text += std::to_string(i) + "\n";
    }
    SA_RETURN_IF_ERROR(st.record->Append(text.data(), text.size()));
  } else {
    SA_ASSIGN_OR_RETURN(st.record, env->NewWritableFileAt(store_->RangesAt(object_.sha256), 0600,
                                                          WriteOpen::kAppend));
  }

  ChunkedDownloadResult result;
  for (size_t i = 0; i < count; ++i) {
    if (st.done[i]) {
      result.resumed_bytes += st.chunks[i].end - st.chunks[i].begin;
    } else {
      st.pending.push_back(i);
    }
  }
  if (result.resumed_bytes > 0) {
    LogInfo("resuming download", {{"repo", repo_},
                                  {"path", what_},
                                  {"have", FormatBytes(result.resumed_bytes)},
                                  {"of", FormatBytes(object_.size)},
                                  {"chunks_left", std::to_string(st.pending.size())}});
  }
  st.excluded.assign(sources_->size(), false);
  st.no_ranges.assign(sources_->size(), false);

  // Hash completed chunks in order while the others arrive.
  SA_ASSIGN_OR_RETURN(auto reader, env->NewRandomAccessFile(partial));
  std::thread hasher([&] {
    std::vector<char> buf(kHashReadBytes);
    while (true) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(st.mu);
        st.cv.wait(lock, [&] { return st.stop || st.hashed == count || st.done[st.hashed]; });
        if (st.hashed == count || (st.stop && !st.done[st.hashed])) return;
        i = st.hashed;
      }
      for (uint64_t at = st.chunks[i].begin; at < st.chunks[i].end;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), st.chunks[i].end - at));
        auto n = reader->ReadAt(at, buf.data(), want);
        if (!n.ok() || *n == 0) {
          std::lock_guard<std::mutex> lock(st.mu);
          st.hash_error =
              n.ok() ? Status::IOError("read " + partial, "shorter than recorded") : n.status();
          st.Fail(st.hash_error);
          return;
        }
        st.hasher.Update(buf.data(), *n);
        at += *n;
      }
      std::lock_guard<std::mutex> lock(st.mu);
      st.hashed++;
    }
  });

  const int workers =
      std::max(1, std::min<int>(options_.connections, static_cast<int>(st.pending.size())));
  std::vector<std::thread> threads;
  std::vector<Status> worker_status(static_cast<size_t>(workers));
  if (!st.pending.empty()) {
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] { worker_status[static_cast<size_t>(w)] = Work(&st); });
    }
  }
  for (auto& t : threads) t.join();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (!st.error.ok()) st.stop = true;
    st.cv.notify_all();
  }
  hasher.join();
  result.bytes_fetched = st.fetched.load();
  Status closed = st.record->Close();
  if (!st.error.ok()) return st.error;
  SA_RETURN_IF_ERROR(closed);
  SA_RETURN_IF_ERROR(Finish(&st, &result.digest));
  return result;
}

Status ChunkedDownload::Work(State* st) {
  std::map<size_t, std::unique_ptr<Source>> opened;
  while (true) {
    size_t ci;
    {
      std::unique_lock<std::mutex> lock(st->mu);
      st->cv.wait(lock, [&] { return st->stop || !st->pending.empty() || st->in_flight == 0; });
      if (st->stop || st->pending.empty()) {
        st->cv.notify_all();
        return Status::OK();
      }
      ci = st->pending.front();
      st->pending.pop_front();
      st->in_flight++;
    }
    State::Chunk& chunk = st->chunks[ci];

    // Pick a source: the best one not excluded, waiting out backoffs.
    std::optional<size_t> si;
    Status pick_error;
    while (true) {
      std::vector<bool> excluded;
      {
        std::lock_guard<std::mutex> lock(st->mu);
        excluded = st->excluded;
        if (st->stop) break;
      }
      SourceSet::Clock::time_point wait_until{};
      si = sources_->Acquire(excluded, &wait_until);
      if (si) break;
      if (wait_until == SourceSet::Clock::time_point{}) {
        std::lock_guard<std::mutex> lock(st->mu);
        bool all_no_ranges =
            std::all_of(st->no_ranges.begin(), st->no_ranges.end(), [](bool b) { return b; });
        pick_error =
            all_no_ranges
                ? Status::Unsupported(what_, "no source answers range requests")
                : st->last_source_error.WithContext("no source left for " + what_ + "; last error");
        break;
      }
      PauseUntil(wait_until, options_.cancel);
      if (options_.cancel != nullptr && options_.cancel->load()) {
        pick_error = Status::Cancelled("download " + what_, "stop requested");
        break;
      }
    }
    if (!si) {
      std::lock_guard<std::mutex> lock(st->mu);
      st->in_flight--;
      if (!pick_error.ok()) st->Fail(pick_error);
      st->cv.notify_all();
      return pick_error;
    }

    // One request for the rest of the chunk.
    Status s;
    bool local_failure = false;  // the disk, not the source
    uint64_t got = 0;
    auto start = SourceSet::Clock::now();
    SourceSet::Clock::duration first_byte{};
    if (options_.budget != nullptr && !options_.budget->Acquire(options_.cancel)) {
      s = Status::Cancelled("download " + what_, "stop requested");
    } else {
      auto& source = opened[*si];
      if (!source) {
        auto made = sources_->Open(*si);
        if (made.ok()) {
          source = std::move(made).value();
        } else {
          s = made.status();
        }
      }
      if (source) {
        RangeSink sink = [&](uint64_t offset, const char* data, size_t n) -> Status {
          if (options_.cancel != nullptr && options_.cancel->load()) {
            return Status::Cancelled("download " + what_, "stop requested");
          }
          if (got == 0) first_byte = SourceSet::Clock::now() - start;
          uint64_t end = offset + n;
          if (end <= chunk.next || offset >= chunk.end) return Status::OK();  // not needed
          if (offset > chunk.next) {
            return Status::Network(sources_->url(*si), "answer skipped bytes " +
                                                           std::to_string(chunk.next) + " to " +
                                                           std::to_string(offset));
          }
          uint64_t from = chunk.next;
          uint64_t to = std::min(end, chunk.end);
          Status w = st->file->WriteAt(from, data + (from - offset), to - from);
          if (!w.ok()) {
            local_failure = true;
            return w;
          }
          chunk.next = to;
          got += to - from;
          st->fetched.fetch_add(to - from);
          if (options_.on_bytes) options_.on_bytes(to - from);
          return Status::OK();
        };
        s = source->FetchContentRanges(content_, {{chunk.next, chunk.end - chunk.next}}, sink);
        if (s.ok() && chunk.next < chunk.end) {
          s = Status::Network(sources_->url(*si), "answer ended before the range did");
        }
      }
      if (options_.budget != nullptr) options_.budget->Release();
    }
    sources_->Release(*si, local_failure ? Status::OK() : s, got, first_byte,
                      SourceSet::Clock::now() - start);
    if (s.ok()) {
      // On disk before it is recorded, so a later run can trust the record.
      s = st->file->WaitWriteback(chunk.begin, chunk.end - chunk.begin);
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(st->mu);
        std::string line = std::to_string(ci) + "\n";
        s = st->record->Append(line.data(), line.size());
      }
      if (!s.ok()) local_failure = true;
    }

    std::lock_guard<std::mutex> lock(st->mu);
    st->in_flight--;
    if (s.ok()) {
      st->done[ci] = true;
      st->cv.notify_all();
      continue;
    }
    if (s.IsCancelled() || local_failure) {
      st->Fail(s.WithContext("download " + what_));
      return s;
    }
    st->last_source_error = s;
    const std::string& url = sources_->url(*si);
    if (s.code() == Status::Code::kUnsupported || s.IsNotFound() ||
        s.code() == Status::Code::kCorruption) {
      // This source cannot serve this object in ranges: the others may.
      st->excluded[*si] = true;
      st->no_ranges[*si] = s.code() == Status::Code::kUnsupported;
      LogWarning("source cannot serve this download; using the others",
                 {{"source", url}, {"path", what_}, {"error", s.ToString()}});
    } else if (got < kProgressBytes && ++chunk.failures >= sources_->retry().max_attempts) {
      // (An attempt that received a good part of its chunk made progress and
      // is not counted; one that trickled, too slow for http_low_speed_limit
      // or stalling after a few bytes, is, or it would be retried forever.)
      st->Fail(s.WithContext("download " + what_ + " bytes " + std::to_string(chunk.next) + "-" +
                             std::to_string(chunk.end) + ": gave up after " +
                             std::to_string(chunk.failures) + " attempts; last error"));
      return st->error;
    } else {
      LogWarning("range request failed; retrying",
                 {{"source", url},
                  {"path", what_},
                  {"bytes", std::to_string(chunk.next) + "-" + std::to_string(chunk.end)},
                  {"attempt", std::to_string(chunk.failures)},
                  {"error", s.ToString()}});
    }
    st->pending.push_front(ci);  // what it received is kept
    st->cv.notify_all();
  }
}

Status ChunkedDownload::Finish(State* st, ContentDigest* digest) {
  Env* env = store_->env();
  SA_RETURN_IF_ERROR(st->file->Sync());
  SA_RETURN_IF_ERROR(st->file->Close());
  const uint64_t hashed = st->hasher.size();
  *digest = st->hasher.Finish();
  if (hashed != object_.size) {
    return Status::IOError("download " + what_, "hashed " + std::to_string(hashed) + " of " +
                                                    std::to_string(object_.size) + " bytes");
  }
  if (digest->sha256 != object_.sha256 ||
      (!object_.xxh3_128.empty() && digest->xxh3_128 != object_.xxh3_128)) {
    std::string from;
    for (size_t i = 0; i < sources_->size(); ++i) from += (i ? ", " : "") + sources_->url(i);
    store_->RemovePartial(object_.sha256);
    return Status::Corruption(
        "download " + what_, "content hashes to sha256 " + digest->sha256 + ", the manifest says " +
                                 object_.sha256 + "; a source serves wrong bytes (" + from + ")");
  }
  KillPoint("verified");  // test-only: complete and verified, not yet in the store
  SA_RETURN_IF_ERROR(store_->CommitPartial(object_.sha256));
  KillPoint("stored");  // in the store, its ranges record not yet removed
  Status r = env->RemoveFileAt(store_->RangesAt(object_.sha256));
  return r.IsNotFound() ? Status::OK() : r;
}

}  // namespace sync_agent
