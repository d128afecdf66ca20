#include "common/sync/object_fetcher.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"
#include "common/source/source.h"
#include "common/store/object_store.h"
#include "common/store/pipelined_sink.h"
#include "common/store/verifying_sink.h"

namespace sync_agent {
namespace {

constexpr size_t kCopyChunk = 1 << 20;
// Buffers between receiving and hashing/writing a content: 4 of up to 1 MiB,
// no larger than the content (a small file must not cost 4 MiB of buffers
// in each of the many transfers of a pass).
constexpr size_t kPipeBuffers = 4;
size_t PipeBufferBytes(uint64_t bytes) {
  return static_cast<size_t>(std::clamp<uint64_t>(bytes, 16 << 10, 1 << 20));
}
// What a part of a multipart/byteranges answer costs beyond its data
// (boundary, Content-Type, Content-Range), and a request beyond its parts.
constexpr uint64_t kPartOverhead = 100;
constexpr uint64_t kRequestOverhead = 400;
// With several connections, a request asks for at most this many bytes of ranges.
constexpr uint64_t kMaxGroupBytes = 4ULL << 20;
// Local candidates of at least this many blocks are sampled before the full
// match; with 64 windows, a candidate sharing 10% of its bytes with the new
// file is wrongly passed over with probability 0.9^64, about 0.1%.
constexpr uint64_t kSampleFirstBlocks = 1024;
constexpr int kSampleWindows = 64;
// MatchAligned tries shift 0 and up to this many shifts the sample saw, and
// its plan is used if it finds at least the sampled share of the old file
// less this slack.
constexpr size_t kMaxShifts = 4;
constexpr double kAlignedSlack = 0.1;

std::string Short(const std::string& sha) { return sha.substr(0, 12); }

// Cancellation and a full disk end the run; anything else is a reason to
// try the next way.
bool MustStop(const Status& s) { return s.IsCancelled() || s.code() == Status::Code::kNoSpace; }

// Builds the new file in order from local copies and fetched ranges. The
// plan's local copies and missing ranges tile the file; fetched data may
// also cover local bytes (merged ranges) and then wins.
class Assembler {
 public:
  Assembler(const std::vector<LocalCopy>& local, const RandomAccessFile& old, ObjectSink* out,
            std::string what)
      : local_(local), old_(old), out_(out), what_(std::move(what)), buf_(kCopyChunk) {}

  Status Remote(uint64_t offset, const char* data, size_t n) {
    if (offset + n <= pos_) return Status::OK();  // delivered before
    if (offset > pos_) SA_RETURN_IF_ERROR(CopyLocalUpTo(offset));
    uint64_t skip = pos_ - offset;
    SA_RETURN_IF_ERROR(out_->Write(data + skip, n - skip));
    pos_ = offset + n;
    return Status::OK();
  }
  Status Finish(uint64_t size) { return CopyLocalUpTo(size); }
  uint64_t local_bytes() const { return local_bytes_; }

 private:
  Status CopyLocalUpTo(uint64_t target) {
    while (pos_ < target) {
      while (next_ < local_.size() && local_[next_].new_offset + local_[next_].length <= pos_) {
        ++next_;
      }
      if (next_ == local_.size() || local_[next_].new_offset > pos_) {
        return Status::Unsupported(what_, "byte " + std::to_string(pos_) +
                                              " of the new file has not arrived before byte " +
                                              std::to_string(target) +
                                              " (the server sent ranges out of order)");
      }
      const LocalCopy& c = local_[next_];
      uint64_t end = std::min(target, c.new_offset + c.length);
      size_t n = static_cast<size_t>(std::min<uint64_t>(end - pos_, buf_.size()));
      uint64_t at = c.old_offset + (pos_ - c.new_offset);
      SA_ASSIGN_OR_RETURN(size_t got, old_.ReadAt(at, buf_.data(), n));
      if (got != n) {
        return Status::IOError(what_, "the local file ended at byte " + std::to_string(at + got));
      }
      SA_RETURN_IF_ERROR(out_->Write(buf_.data(), n));
      pos_ += n;
      local_bytes_ += n;
    }
    return Status::OK();
  }

  const std::vector<LocalCopy>& local_;
  const RandomAccessFile& old_;
  ObjectSink* out_;
  std::string what_;
  std::vector<char> buf_;
  uint64_t pos_ = 0;
  size_t next_ = 0;
  uint64_t local_bytes_ = 0;
};

// Removes a file when it goes out of scope.
class ScopedRemove {
 public:
  ScopedRemove(Env* env, RootedPath path) : env_(env), path_(std::move(path)) {}
  ~ScopedRemove() { env_->RemoveFileAt(path_); }
  ScopedRemove(const ScopedRemove&) = delete;
  ScopedRemove& operator=(const ScopedRemove&) = delete;

 private:
  Env* env_;
  RootedPath path_;
};

// Splits groups of ranges so that none asks for more than max_bytes, keeping
// their order: large ranges (an appended tail, a rewritten tensor) become
// several requests that connections can fetch at once.
std::vector<std::vector<ByteRange>> SplitGroups(const std::vector<std::vector<ByteRange>>& groups,
                                                uint64_t max_bytes) {
  std::vector<std::vector<ByteRange>> out;
  for (const auto& g : groups) {
    std::vector<ByteRange> cur;
    uint64_t cur_bytes = 0;
    for (ByteRange r : g) {
      while (r.length > 0) {
        uint64_t take = std::min(r.length, max_bytes - cur_bytes);
        cur.push_back({r.offset, take});
        cur_bytes += take;
        r.offset += take;
        r.length -= take;
        if (cur_bytes == max_bytes) {
          out.push_back(std::move(cur));
          cur.clear();
          cur_bytes = 0;
        }
      }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
  }
  return out;
}

// Fetches groups of ranges ahead of the assembler, over several connections
// (from the sources that serve the revision), into memory, at most a window
// of bytes ahead of what was consumed. Take(i) hands group i over in the
// order the assembler needs; a group whose prefetch failed is nullopt and the
// caller fetches it itself, so a prefetch failure costs nothing but time.
class RangePrefetcher {
 public:
  struct Piece {
    uint64_t offset;
    std::string data;
  };
  RangePrefetcher(SourceSet* sources, ConnectionBudget* budget, const ContentRef& content,
                  const std::vector<std::vector<ByteRange>>& groups, int connections,
                  const CancelFlag* cancel)
      : sources_(sources),
        budget_(budget),
        content_(content),
        groups_(groups),
        cancel_(cancel),
        connections_(static_cast<size_t>(std::max(connections, 0))),
        results_(groups.size()),
        ready_(groups.size(), false) {
    for (size_t i = 0; i < connections_; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~RangePrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Waits for group i; nullopt when it could not be prefetched.
  std::optional<std::vector<Piece>> Take(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_[i] || stop_; });
    if (!ready_[i]) return std::nullopt;
    consumed_ = i + 1;
    std::optional<std::vector<Piece>> out = std::move(results_[i]);
    results_[i].reset();
    if (out) {
      for (const Piece& p : *out) in_memory_ -= p.data.size();
    }
    cv_.notify_all();
    return out;
  }
  uint64_t bytes_fetched() const { return fetched_.load(); }

 private:
  static constexpr uint64_t kWindowBytes = 64ULL << 20;

  void Work() {
    std::unique_ptr<Source> source;
    size_t source_index = 0;
    while (true) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        // Stay within the window: groups far ahead of the assembler wait.
        cv_.wait(lock, [&] {
          return stop_ || next_ >= groups_.size() ||
                 (in_memory_ < kWindowBytes && next_ < consumed_ + 4 * connections_ + 4);
        });
        if (stop_ || next_ >= groups_.size()) return;
        i = next_++;
        for (const ByteRange& r : groups_[i]) in_memory_ += r.length;
      }
      std::vector<Piece> pieces;
      Status s;
      if (cancel_ != nullptr && cancel_->load()) s = Status::Cancelled("prefetch", "stop");
      SourceSet::Clock::time_point wait{};
      std::optional<size_t> pick = s.ok() ? sources_->Acquire({}, &wait) : std::nullopt;
      if (!pick) {
        s = Status::Network("prefetch", "no source free");
      } else {
        if (!source || source_index != *pick) {
          auto made = sources_->Open(*pick);
          source = made.ok() ? std::move(made).value() : nullptr;
          source_index = *pick;
          if (!made.ok()) s = made.status();
        }
        uint64_t got = 0;
        auto start = SourceSet::Clock::now();
        SourceSet::Clock::duration first{};
        if (source && (budget_ == nullptr || budget_->Acquire(cancel_))) {
          s = source->FetchContentRanges(
              content_, groups_[i], [&](uint64_t offset, const char* data, size_t n) -> Status {
                if (got == 0) first = SourceSet::Clock::now() - start;
                got += n;
                if (!pieces.empty() && pieces.back().offset + pieces.back().data.size() == offset) {
                  pieces.back().data.append(data, n);
                } else {
                  pieces.push_back({offset, std::string(data, n)});
                }
                return Status::OK();
              });
          if (budget_ != nullptr) budget_->Release();
        } else if (source) {
          s = Status::Cancelled("prefetch", "stop");
        }
        fetched_.fetch_add(got);
        sources_->Release(*pick, s, got, first, SourceSet::Clock::now() - start);
      }
      std::lock_guard<std::mutex> lock(mu_);
      for (const ByteRange& r : groups_[i]) in_memory_ -= r.length;
      if (s.ok()) {
        for (const Piece& p : pieces) in_memory_ += p.data.size();
        results_[i] = std::move(pieces);
      } else if (s.code() == Status::Code::kUnsupported) {
        // The server refuses several ranges per request: the assembler's
        // own loop knows what to do; stop prefetching.
        stop_ = true;
      }
      ready_[i] = true;
      cv_.notify_all();
    }
  }

  SourceSet* sources_;
  ConnectionBudget* budget_;
  const ContentRef& content_;
  const std::vector<std::vector<ByteRange>>& groups_;
  const CancelFlag* cancel_;
  // The number of workers, fixed before the first starts: they must not read
  // threads_, which the constructor is still growing while they run.
  const size_t connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::optional<std::vector<Piece>>> results_;
  std::vector<bool> ready_;
  size_t next_ = 0;
  size_t consumed_ = 0;
  uint64_t in_memory_ = 0;
  bool stop_ = false;
  std::atomic<uint64_t> fetched_{0};
  std::vector<std::thread> threads_;
};
}  // namespace

ObjectFetcher::ObjectFetcher(ObjectStore* store, Source* source, std::string repo,
                             ObjectFetcherOptions options)
    : store_(store), source_(source), repo_(std::move(repo)), options_(std::move(options)) {}

bool ObjectFetcher::Cancelled() const { return options_.cancel && options_.cancel->load(); }

Result<FetchOutcome> ObjectFetcher::Fetch(const ObjectFetch& object, const ManifestEntry& entry,
                                          const ContentRef& content,
                                          const std::vector<LocalCandidate>& candidates) {
  FetchOutcome outcome;
  std::vector<std::string> notes;
  const uint64_t have = std::min(store_->PartialSize(object.sha256), object.size);
  const uint64_t whole_cost = object.size - have;
  auto joined = [&notes]() {
    std::string note;
    for (const std::string& n : notes) note += (note.empty() ? "" : "; ") + n;
    return note;
  };
  auto fall_back = [&](const std::string& way, const Status& s) {
    notes.push_back(way + " failed: " + s.ToString());
    LogWarning(
        "falling back",
        {{"repo", repo_}, {"path", object.first_path}, {"way", way}, {"error", s.ToString()}});
  };

  // 1. A published delta from content this node holds: the smallest.
  const DeltaRef* best = nullptr;
  for (const DeltaRef& d : entry.deltas) {
    if (store_->SizeOf(d.from_sha256).has_value() && (best == nullptr || d.size < best->size)) {
      best = &d;
    }
  }
  if (best != nullptr && best->size < whole_cost) {
    Status s = TryDelta(object, *best, &outcome);
    if (s.ok()) return outcome;
    if (MustStop(s)) return s;
    fall_back("delta from " + Short(best->from_sha256), s);
  } else if (best != nullptr) {
    notes.push_back("the delta from " + Short(best->from_sha256) + " is no smaller than the " +
                    FormatBytes(whole_cost) + " left to download");
  } else if (!entry.deltas.empty()) {
    notes.push_back("no published delta starts from content this node has");
  }

  // 2. Signature matching against the best local candidate.
  const LocalCandidate* candidate = nullptr;
  for (const LocalCandidate& c : candidates) {
    if (c.sha256 != object.sha256 && store_->SizeOf(c.sha256).has_value()) {
      candidate = &c;
      break;
    }
  }
  if (!entry.signature.present()) {
    if (candidate != nullptr) notes.push_back("no signature published for this file");
  } else if (candidate == nullptr) {
    notes.push_back("no local content to match the signature against");
  } else if (entry.signature.size >= whole_cost) {
    notes.push_back("the signature is no smaller than what is left to download");
  } else {
    bool not_worth_it = false;
    bool used_aligned = false;
    std::string signature;
    Status s = FetchSignature(object, entry, &signature, &outcome);
    if (s.ok()) {
      s = TryRanges(object, content, entry.signature, signature, *candidate, whole_cost,
                    /*allow_aligned=*/true, &outcome, &not_worth_it, &used_aligned);
    }
    if (s.code() == Status::Code::kCorruption && used_aligned) {
      // A weak sum matched wrong bytes (rare) or the old content changed:
      // match again with strong sums.
      LogWarning("the aligned block match did not verify; matching with strong sums",
                 {{"repo", repo_}, {"path", object.first_path}, {"error", s.ToString()}});
      notes.push_back("the aligned block match did not verify (" + s.ToString() + ")");
      s = TryRanges(object, content, entry.signature, signature, *candidate, whole_cost,
                    /*allow_aligned=*/false, &outcome, &not_worth_it, &used_aligned);
    }
    if (s.ok() && !not_worth_it) {
      outcome.note = joined();
      return outcome;
    }
    if (MustStop(s)) return s;
    if (s.ok()) {
      notes.push_back(outcome.note);
    } else {
      fall_back("signature matching against " + Short(candidate->sha256), s);
    }
  }

  // 3. The whole file.
  uint64_t fetched_before = outcome.bytes_fetched;
  outcome = FetchOutcome();
  outcome.bytes_fetched = fetched_before;
  SA_RETURN_IF_ERROR(FetchWhole(object, content, &outcome));
  outcome.note = joined();
  return outcome;
}

Status ObjectFetcher::TryDelta(const ObjectFetch& object, const DeltaRef& delta,
                               FetchOutcome* outcome) {
  Env* env = store_->env();
  const std::string where = source_->DeltaLocation(object.sha256, delta);
  RootedPath tmp_at = store_->PartialAt(delta.sha256);
  tmp_at.rel += ".delta";
  const std::string tmp = tmp_at.full();
  ScopedRemove remove_tmp(env, tmp_at);
  {
    SA_ASSIGN_OR_RETURN(auto file, env->NewWritableFileAt(tmp_at, 0600, WriteOpen::kTruncate));
    VerifyingSink sink("delta " + where, delta.size, delta.sha256,
                       [&file](const char* data, size_t n) { return file->Append(data, n); });
    Status s = source_->FetchDelta(object.sha256, delta, &sink);
    outcome->bytes_fetched += sink.received();
    SA_RETURN_IF_ERROR(s);
    SA_RETURN_IF_ERROR(sink.Verify());
    SA_RETURN_IF_ERROR(file->Close());
  }
  auto basis_size = store_->SizeOf(delta.from_sha256);
  if (!basis_size) return Status::NotFound("basis " + delta.from_sha256, "left the object store");
  SA_ASSIGN_OR_RETURN(auto basis, env->NewRandomAccessFile(store_->ObjectPath(delta.from_sha256)));
  SA_ASSIGN_OR_RETURN(auto delta_file, env->NewRandomAccessFile(tmp));

  ObjectDownload dl(
      store_, {object.sha256, object.xxh3_128, object.size},
      where + " applied to " + Short(delta.from_sha256) + " (" + object.first_path + ")");
  uint64_t copied = 0;
  Status s;
  {
    PipelinedSink pipe(&dl, kPipeBuffers, PipeBufferBytes(object.size));  // hashing, writing
    s = pipe.Begin(0);
    if (s.ok()) {
      s = ApplyDelta(
          *basis, *basis_size, *delta_file, delta.size,
          [&](const char* data, size_t n) -> Status {
            if (Cancelled()) return Status::Cancelled("sync " + repo_, "stop requested");
            return pipe.Write(data, n);
          },
          &copied);
    }
    Status drained = pipe.Drain();
    if (s.ok()) s = drained;
  }
  if (s.ok()) s = dl.Finish();
  if (s.ok()) outcome->xxh3_128 = dl.digest().xxh3_128;
  if (!s.ok()) {
    store_->RemovePartial(object.sha256);  // its bytes may be wrong
    return s;
  }
  outcome->method = FetchMethod::kDelta;
  outcome->basis_sha256 = delta.from_sha256;
  outcome->bytes_reused = copied;
  return Status::OK();
}

Status ObjectFetcher::FetchSignature(const ObjectFetch& object, const ManifestEntry& entry,
                                     std::string* signature, FetchOutcome* outcome) {
  const SignatureRef& ref = entry.signature;
  VerifyingSink sink("signature " + source_->SignatureLocation(object.sha256, ref), ref.size,
                     ref.sha256, [signature](const char* data, size_t n) {
                       signature->append(data, n);
                       return Status::OK();
                     });
  Status s = source_->FetchSignature(object.sha256, ref, &sink);
  outcome->bytes_fetched += sink.received();
  SA_RETURN_IF_ERROR(s);
  return sink.Verify();
}

Status ObjectFetcher::TryRanges(const ObjectFetch& object, const ContentRef& content,
                                const SignatureRef& ref, const std::string& signature,
                                const LocalCandidate& candidate, uint64_t whole_cost,
                                bool allow_aligned, FetchOutcome* outcome, bool* not_worth_it,
                                bool* used_aligned) {
  Env* env = store_->env();
  *used_aligned = false;
  if (Cancelled()) return Status::Cancelled("sync " + repo_, "stop requested");
  // The signature itself is checked by the matchers that read it.
  const uint64_t block_len = ref.block_len;
  auto old_size = store_->SizeOf(candidate.sha256);
  if (!old_size) return Status::NotFound("local " + candidate.sha256, "left the object store");
  SA_ASSIGN_OR_RETURN(auto old, env->NewRandomAccessFile(store_->ObjectPath(candidate.sha256)));
  auto match_start = std::chrono::steady_clock::now();
  std::optional<MatchPlan> aligned;
  if (*old_size >= kSampleFirstBlocks * block_len) {
    // Rolling a large file that shares nothing (a retrained model) costs
    // seconds per GiB; a few windows tell first.
    SA_ASSIGN_OR_RETURN(MatchSample sample,
                        SampleMatch(signature, object.size, *old, *old_size, kSampleWindows));
    if (sample.windows_matched == 0) {
      *not_worth_it = true;
      outcome->note = "none of " + std::to_string(sample.windows) + " sampled windows of " +
                      candidate.why + " shares a block with the new file";
      return Status::OK();
    }
    if (allow_aligned) {
      // Most edits of model files keep blocks in place, or shifted by what
      // was inserted or cut before them; the sample says by how much.
      // The shift that matched the most sampled bytes is tried first (a
      // header that grew shifts nearly every block), then the others, then 0.
      std::vector<int64_t> shifts;
      for (int64_t shift : sample.shifts) {
        if (shifts.size() == kMaxShifts) break;
        shifts.push_back(shift);
      }
      if (std::find(shifts.begin(), shifts.end(), 0) == shifts.end()) shifts.push_back(0);
      SA_ASSIGN_OR_RETURN(MatchPlan plan, MatchAligned(signature, object.size, *old, *old_size,
                                                       shifts, options_.match_threads));
      // Use it if it finds about as much of old as the sample says is there.
      double sampled = static_cast<double>(sample.windows_matched) / sample.windows;
      double found = static_cast<double>(plan.local_bytes()) / static_cast<double>(*old_size);
      if (found >= sampled - kAlignedSlack) aligned = std::move(plan);
    }
  }
  *used_aligned = aligned.has_value();
  MatchPlan plan;
  if (aligned) {
    plan = std::move(*aligned);
  } else {
    SA_ASSIGN_OR_RETURN(
        plan, MatchSignature(signature, object.size, *old, *old_size, options_.match_threads));
  }
  LogInfo("matched the signature against local content",
          {{"repo", repo_},
           {"path", object.first_path},
           {"local", candidate.why},
           {"how", *used_aligned ? "aligned blocks" : "rolling, strong sums"},
           {"found", FormatBytes(plan.local_bytes())},
           {"missing", FormatBytes(plan.missing_bytes())},
           {"ranges", std::to_string(plan.missing.size())},
           {"took", FormatDuration(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - match_start))}});

  auto groups = GroupRanges(plan.missing, options_.range_gap, options_.max_ranges_per_request);
  // With several connections, big range sets go out as several requests at once.
  const bool parallel = options_.sources != nullptr && options_.connections_per_file > 1;
  if (parallel) groups = SplitGroups(groups, kMaxGroupBytes);
  uint64_t estimate = 0;
  for (const auto& g : groups) {
    estimate += kRequestOverhead;
    for (const ByteRange& r : g) estimate += r.length + kPartOverhead;
  }
  if (estimate >= whole_cost) {
    *not_worth_it = true;
    outcome->note = "signature matching found " + FormatBytes(plan.local_bytes()) + " of " +
                    FormatBytes(object.size) + " in " + candidate.why +
                    ", too little to beat downloading the rest";
    return Status::OK();
  }

  const std::string where = source_->ContentLocation(content);
  ObjectDownload dl(store_, {object.sha256, object.xxh3_128, object.size},
                    "ranges of " + where + " with blocks of " + Short(candidate.sha256) + " (" +
                        object.first_path + ")");
  Status s;
  uint64_t local_bytes = 0;
  {
    PipelinedSink pipe(&dl, kPipeBuffers, PipeBufferBytes(object.size));
    Assembler assembler(plan.local, *old, &pipe, "assemble " + object.first_path);
    s = pipe.Begin(0);
    std::unique_ptr<RangePrefetcher> prefetch;
    if (parallel && groups.size() > 1) {
      prefetch = std::make_unique<RangePrefetcher>(
          options_.sources, options_.budget, content, groups,
          std::min<int>(options_.connections_per_file, static_cast<int>(groups.size())),
          options_.cancel);
    }
    for (size_t i = 0; s.ok() && i < groups.size(); ++i) {
      if (Cancelled()) {
        s = Status::Cancelled("sync " + repo_, "stop requested");
        break;
      }
      auto sink = [&](uint64_t offset, const char* data, size_t n) -> Status {
        outcome->bytes_fetched += n;
        return assembler.Remote(offset, data, n);
      };
      if (prefetch) {
        if (auto pieces = prefetch->Take(i)) {
          for (const auto& p : *pieces) {
            s = assembler.Remote(p.offset, p.data.data(), p.data.size());
            if (!s.ok()) break;
          }
          continue;
        }
        // Not prefetched (a source failed, or refuses several ranges): this
        // thread asks for it, as without prefetching.
      }
      s = source_->FetchContentRanges(content, groups[i], sink);
      if (s.code() == Status::Code::kUnsupported && groups[i].size() > 1) {
        // Servers and CDNs that cap ranges per request (nginx's max_ranges)
        // answer several with the whole file: ask one range at a time from
        // here on. (Bytes delivered already are skipped by the assembler.)
        LogInfo("the server does not serve several ranges in one request; asking one at a time",
                {{"repo", repo_}, {"path", object.first_path}, {"reason", s.ToString()}});
        if (prefetch) {  // it works on the old groups: stop it first
          outcome->bytes_fetched += prefetch->bytes_fetched();
          prefetch.reset();
        }
        std::vector<std::vector<ByteRange>> single;
        for (size_t j = i; j < groups.size(); ++j) {
          for (const ByteRange& r : groups[j]) single.push_back({r});
        }
        groups = std::move(single);
        i = 0;
        s = source_->FetchContentRanges(content, groups[0], sink);
      }
    }
    if (prefetch) {
      outcome->bytes_fetched += prefetch->bytes_fetched();
      prefetch.reset();
    }
    if (s.ok()) s = assembler.Finish(object.size);
    Status drained = pipe.Drain();
    if (s.ok()) s = drained;
    local_bytes = assembler.local_bytes();
  }
  if (s.ok()) s = dl.Finish();
  if (s.ok()) outcome->xxh3_128 = dl.digest().xxh3_128;
  if (!s.ok()) {
    store_->RemovePartial(object.sha256);
    return s;
  }
  outcome->method = FetchMethod::kRanges;
  outcome->basis_sha256 = candidate.sha256;
  outcome->bytes_reused = local_bytes;
  return Status::OK();
}

Status ObjectFetcher::FetchWhole(const ObjectFetch& object, const ContentRef& content,
                                 FetchOutcome* outcome) {
  if (options_.sources != nullptr && source_->ChunksHelp(content) &&
      object.size >= kMinChunkedBytes) {
    ChunkedDownloadOptions co;
    co.connections = options_.connections_per_file;
    co.budget = options_.budget;
    co.cancel = options_.cancel;
    co.on_bytes = options_.on_bytes;
    ChunkedDownload chunked(store_, options_.sources, repo_, content,
                            {object.sha256, object.xxh3_128, object.size}, object.first_path, co);
    auto got = chunked.Run();
    if (got.ok()) {
      outcome->bytes_fetched += got->bytes_fetched;
      outcome->xxh3_128 = got->digest.xxh3_128;
      outcome->method = FetchMethod::kWhole;
      return Status::OK();
    }
    if (got.status().code() != Status::Code::kUnsupported) return got.status();
    LogInfo("no source answers range requests; downloading as one stream",
            {{"repo", repo_}, {"path", object.first_path}});
  }
  SA_RETURN_IF_ERROR(ChunksToSequentialPartial(store_, object.sha256, object.size));

  const std::string origin = source_->ContentLocation(content);
  std::mt19937_64 rng(std::random_device{}());
  uint32_t network_failures = 0;
  bool restarted = false;
  while (true) {
    uint64_t reported = 0;
    auto progress = [&](uint64_t on_disk) {
      if (options_.progress) options_.progress(on_disk);
      if (options_.on_bytes && on_disk > reported) options_.on_bytes(on_disk - reported);
      reported = on_disk;
    };
    ObjectDownload dl(store_, {object.sha256, object.xxh3_128, object.size},
                      origin + " (" + object.first_path + ")", progress);
    uint64_t offset = dl.ResumeOffset();
    reported = offset;
    if (offset > 0) {
      LogInfo("resuming download", {{"repo", repo_},
                                    {"path", object.first_path},
                                    {"from", FormatBytes(offset)},
                                    {"of", FormatBytes(object.size)}});
    }
    Status s;
    if (offset == object.size && object.size > 0) {
      s = dl.Begin(offset);  // everything is on disk already; only verify
    } else {
      // Receive on this thread; hash and write on another.
      PipelinedSink pipe(&dl, kPipeBuffers, PipeBufferBytes(object.size - offset));
      s = source_->FetchContent(content, offset, &pipe);
      // Whatever arrived before a failure is kept, for a retry or the next run.
      Status drained = pipe.Drain();
      if (s.ok()) s = drained;
    }
    if (s.ok()) s = dl.Finish();
    if (s.ok()) outcome->xxh3_128 = dl.digest().xxh3_128;
    outcome->bytes_fetched += dl.bytes_written();
    // A resumed download whose result is wrong had wrong bytes on disk from
    // before (Finish deleted them): start over once.
    if (s.code() == Status::Code::kCorruption && offset > 0 && !restarted) {
      restarted = true;
      LogWarning("resumed download did not verify; downloading again from the start",
                 {{"repo", repo_}, {"path", object.first_path}, {"error", s.ToString()}});
      continue;
    }
    if (s.code() == Status::Code::kNetwork && !Cancelled() &&
        ++network_failures < static_cast<uint32_t>(options_.retry.max_attempts)) {
      auto delay = BackoffDelay(options_.retry, network_failures, &rng);
      LogWarning("download failed; resuming after a pause",
                 {{"repo", repo_},
                  {"path", object.first_path},
                  {"attempt", std::to_string(network_failures)},
                  {"pause", FormatDuration(delay)},
                  {"error", s.ToString()}});
      PauseUntil(std::chrono::steady_clock::now() + delay, options_.cancel);
      continue;
    }
    SA_RETURN_IF_ERROR(s);
    outcome->method = FetchMethod::kWhole;
    return Status::OK();
  }
}

}  // namespace sync_agent
