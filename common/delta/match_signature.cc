// MatchSignature: which blocks of a new file can be taken from an old local
// file, found by running librsync's delta job over the old file against the
// new file's signature and reading the delta it writes (zsync style: the
// roles of librsync's "basis" and "new" are swapped).
//
// A delta encodes its input (here: the old file) in order. A COPY(pos, len)
// written while the old stream is at offset p says old[p, p+len) equals the
// signature's file (the new one) at [pos, pos+len); a LITERAL(len) says the
// next len old bytes match nothing. So p advances by the length of every
// command, and each COPY becomes a LocalCopy{pos, p, len}.

#include <algorithm>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/delta/delta_format.h"
#include "common/delta/librsync_job.h"
#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"

namespace sync_agent {

using delta_internal::DeltaStreamParser;
using delta_internal::JobBuffers;
using delta_internal::JobContext;
using delta_internal::RsJob;
using delta_internal::SignatureHeader;

namespace {

constexpr std::string_view kStage = "match signature";
constexpr int kMaxThreads = 64;

uint64_t End(const LocalCopy& c) { return c.new_offset + c.length; }

// Rolls old[begin, end) against a private copy of the signature and appends
// what it finds to *copies, in old-stream order.
Status ScanPart(Signature& signature, uint64_t new_size, const RandomAccessFile& old,
                uint64_t begin, uint64_t end, const JobBuffers& buffers,
                std::vector<LocalCopy>* copies) {
  RsJob job(rs_delta_begin(SignatureAccess::Get(signature)));
  if (!job) return Status::IOError(kStage, "librsync could not start a job");

  uint64_t old_pos = begin;  // old-file offset of the next command's bytes
  DeltaStreamParser parser(kStage, [&](const DeltaCommand& c, uint64_t) {
    if (c.kind == DeltaCommand::Kind::kCopy) {
      // Only a signature whose last block sums were forged (or a full-block
      // strong sum collision) can match past the end of the new file.
      if (c.source_offset > new_size || c.length > new_size - c.source_offset) {
        return Status::Corruption(
            kStage, "block match of " + std::to_string(c.length) + " bytes at new offset " +
                        std::to_string(c.source_offset) + " lies past the end of the new file (" +
                        std::to_string(new_size) + " bytes)");
      }
      copies->push_back(LocalCopy{c.source_offset, old_pos, c.length});
    }
    old_pos += c.length;
    return Status::OK();
  });

  uint64_t read_pos = begin;
  auto pull = [&](char* buf, size_t n) -> Result<size_t> {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, end - read_pos));
    if (want == 0) return size_t{0};
    SA_ASSIGN_OR_RETURN(size_t got, old.ReadAt(read_pos, buf, want));
    if (got != want) {
      return Status::IOError(kStage, "the old file ended at byte " +
                                         std::to_string(read_pos + got) + ", expected " +
                                         std::to_string(end) + " bytes");
    }
    read_pos += got;
    return got;
  };
  auto sink = [&parser](const char* data, size_t n) { return parser.Feed(data, n); };
  JobContext context{kStage, "old file"};
  context.input_offset = begin;
  SA_RETURN_IF_ERROR(delta_internal::RunJob(job.get(), pull, sink, buffers, context));
  SA_RETURN_IF_ERROR(parser.Finish());
  if (old_pos != end) {
    return Status::IOError(kStage, "librsync's delta covers old bytes up to " +
                                       std::to_string(old_pos) + ", expected " +
                                       std::to_string(end));
  }
  return Status::OK();
}

// Sorts copies by new offset and makes them disjoint. Where two cover the
// same new bytes, the one starting earlier in the new file keeps them, and
// among equal starts the one earlier in the old file (the first the scan
// found); the other is trimmed or dropped. Touching copies that continue in
// both files are merged.
std::vector<LocalCopy> Disjoint(std::vector<LocalCopy> copies) {
  std::sort(copies.begin(), copies.end(), [](const LocalCopy& a, const LocalCopy& b) {
    return a.new_offset != b.new_offset ? a.new_offset < b.new_offset : a.old_offset < b.old_offset;
  });
  std::vector<LocalCopy> out;
  for (LocalCopy c : copies) {
    if (!out.empty()) {
      const uint64_t covered = End(out.back());
      if (End(c) <= covered) continue;
      if (c.new_offset < covered) {
        const uint64_t cut = covered - c.new_offset;
        c.new_offset += cut;
        c.old_offset += cut;
        c.length -= cut;
      }
      LocalCopy& last = out.back();
      if (End(last) == c.new_offset && last.old_offset + last.length == c.old_offset) {
        last.length += c.length;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

// The copy holding new offset x, or nullptr. copies: sorted and disjoint.
const LocalCopy* CopyAt(const std::vector<LocalCopy>& copies, uint64_t x) {
  auto it = std::upper_bound(copies.begin(), copies.end(), x,
                             [](uint64_t v, const LocalCopy& c) { return v < c.new_offset; });
  if (it == copies.begin()) return nullptr;
  --it;
  return x < End(*it) ? &*it : nullptr;
}

// librsync indexes each distinct block once, so when the new file repeats a
// block, the old file's copy of it is reported for one index only. Blocks of
// the new file with identical sums (weak and strong) and length have the same
// content, so each uncovered one can come from wherever a covered twin does.
void CoverRepeatedBlocks(std::string_view signature_bytes, const SignatureHeader& header,
                         uint64_t new_size, std::vector<LocalCopy>* copies) {
  const uint64_t blocks = header.block_count;
  uint64_t local = 0;
  for (const LocalCopy& c : *copies) local += c.length;
  if (blocks < 2 || copies->empty() || local == new_size) return;

  auto sums = [&](uint64_t i) {
    return delta_internal::SignatureBlockSums(signature_bytes, header, i);
  };
  auto block_length = [&](uint64_t i) {
    return std::min<uint64_t>(header.block_len, new_size - i * header.block_len);
  };
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::sort(order.begin(), order.end(), [&](uint64_t a, uint64_t b) {
    int cmp = sums(a).compare(sums(b));
    return cmp != 0 ? cmp < 0 : a < b;
  });

  std::vector<LocalCopy> added;
  for (size_t g = 0; g < order.size();) {
    size_t g_end = g + 1;
    while (g_end < order.size() && sums(order[g_end]) == sums(order[g])) ++g_end;
    for (size_t i = g; g_end - g > 1 && i < g_end; ++i) {
      const uint64_t target = order[i];
      const uint64_t target_at = target * header.block_len;
      const LocalCopy* have = CopyAt(*copies, target_at);
      if (have != nullptr && End(*have) >= target_at + block_length(target)) continue;
      for (size_t j = g; j < g_end; ++j) {
        const uint64_t twin = order[j];
        const uint64_t twin_at = twin * header.block_len;
        if (twin == target || block_length(twin) != block_length(target)) continue;
        const LocalCopy* from = CopyAt(*copies, twin_at);
        if (from == nullptr || End(*from) < twin_at + block_length(twin)) continue;
        added.push_back(LocalCopy{target_at, from->old_offset + (twin_at - from->new_offset),
                                  block_length(target)});
        break;
      }
    }
    g = g_end;
  }
  if (added.empty()) return;
  added.insert(added.end(), copies->begin(), copies->end());
  *copies = Disjoint(std::move(added));
}

std::vector<ByteRange> Gaps(const std::vector<LocalCopy>& copies, uint64_t size) {
  std::vector<ByteRange> gaps;
  uint64_t at = 0;
  for (const LocalCopy& c : copies) {
    if (c.new_offset > at) gaps.push_back(ByteRange{at, c.new_offset - at});
    at = End(c);
  }
  if (at < size) gaps.push_back(ByteRange{at, size - at});
  return gaps;
}

}  // namespace

uint64_t MatchPlan::local_bytes() const {
  uint64_t n = 0;
  for (const LocalCopy& c : local) n += c.length;
  return n;
}

uint64_t MatchPlan::missing_bytes() const {
  uint64_t n = 0;
  for (const ByteRange& r : missing) n += r.length;
  return n;
}

namespace delta_internal {

Result<MatchPlan> MatchSignature(std::string_view signature_bytes, uint64_t new_size,
                                 const RandomAccessFile& old, uint64_t old_size, int threads,
                                 const JobBuffers& buffers) {
  RouteLibrsyncLog();
  SA_ASSIGN_OR_RETURN(SignatureHeader header,
                      ParseSignatureFor(signature_bytes, new_size, kStage));
  const uint64_t block = header.block_len;

  std::vector<LocalCopy> found;
  if (old_size > 0 && header.block_count > 0) {
    // Parts start at multiples of the block length and reach block - 1 bytes
    // into the next part, so every block-long window of old lies whole
    // inside some part and no match is lost at a boundary.
    const uint64_t parts_wanted = static_cast<uint64_t>(std::clamp(threads, 1, kMaxThreads));
    uint64_t stride = (old_size + parts_wanted - 1) / parts_wanted;
    stride = std::max<uint64_t>(block, (stride + block - 1) / block * block);
    struct Part {
      uint64_t begin, end;
      std::vector<LocalCopy> copies;
      Status status;
    };
    std::vector<Part> parts;
    for (uint64_t begin = 0; begin < old_size; begin += stride) {
      parts.push_back(Part{begin, std::min(old_size, begin + stride + block - 1), {}, {}});
    }
    auto scan = [&](Part& p) {
      // librsync updates statistics inside the signature while matching, so
      // every thread needs its own.
      auto signature = Signature::Load(signature_bytes);
      p.status = signature.ok() ? ScanPart(*signature, new_size, old, p.begin, p.end, buffers,
                                           &p.copies)
                                : signature.status();
    };
    // The calling thread matches the first part while others take the rest.
    std::vector<std::thread> workers;
    workers.reserve(parts.size() - 1);
    for (size_t i = 1; i < parts.size(); ++i) {
      try {
        workers.emplace_back(scan, std::ref(parts[i]));
      } catch (const std::system_error&) {
        scan(parts[i]);  // no thread to be had: match this part here instead
      }
    }
    scan(parts[0]);
    for (std::thread& t : workers) t.join();
    for (Part& p : parts) {
      SA_RETURN_IF_ERROR(p.status);
      found.insert(found.end(), p.copies.begin(), p.copies.end());
    }
  }

  MatchPlan plan;
  plan.local = Disjoint(std::move(found));
  CoverRepeatedBlocks(signature_bytes, header, new_size, &plan.local);
  plan.missing = Gaps(plan.local, new_size);
  return plan;
}

Result<MatchSample> SampleMatch(std::string_view signature_bytes, uint64_t new_size,
                                const RandomAccessFile& old, uint64_t old_size, int windows,
                                const JobBuffers& buffers) {
  RouteLibrsyncLog();
  SA_ASSIGN_OR_RETURN(Signature signature, Signature::Load(signature_bytes));
  MatchSample sample;
  const uint64_t block = signature.block_len();
  if (old_size == 0 || signature.block_count() == 0 || windows <= 0) return sample;
  // Two blocks and a bit: long enough to hold, at any alignment, one whole
  // block of a region that old and new share.
  const uint64_t window = std::min(old_size, 2 * block + block / 2);
  std::map<int64_t, uint64_t> shift_bytes;  // old offset - new offset -> bytes matched
  for (int i = 0; i < windows; ++i) {
    const uint64_t begin =
        windows == 1 ? 0 : (old_size - window) / static_cast<uint64_t>(windows - 1) * i;
    std::vector<LocalCopy> copies;
    SA_RETURN_IF_ERROR(
        ScanPart(signature, new_size, old, begin, begin + window, buffers, &copies));
    sample.windows++;
    sample.bytes_sampled += window;
    uint64_t matched = 0;
    for (const LocalCopy& c : copies) {
      matched += c.length;
      shift_bytes[static_cast<int64_t>(c.old_offset) - static_cast<int64_t>(c.new_offset)] +=
          c.length;
    }
    sample.bytes_matched += std::min(matched, window);
    if (matched > 0) sample.windows_matched++;
  }
  std::vector<std::pair<uint64_t, int64_t>> by_bytes;
  for (const auto& [shift, bytes] : shift_bytes) by_bytes.push_back({bytes, shift});
  std::sort(by_bytes.begin(), by_bytes.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (const auto& [bytes, shift] : by_bytes) sample.shifts.push_back(shift);
  return sample;
}

}  // namespace delta_internal

Result<MatchSample> SampleMatch(std::string_view signature_bytes, uint64_t new_size,
                                const RandomAccessFile& old, uint64_t old_size, int windows) {
  return delta_internal::SampleMatch(signature_bytes, new_size, old, old_size, windows,
                                     JobBuffers{});
}

Result<MatchPlan> MatchSignature(std::string_view signature_bytes, uint64_t new_size,
                                 const RandomAccessFile& old, uint64_t old_size, int threads) {
  return delta_internal::MatchSignature(signature_bytes, new_size, old, old_size, threads,
                                        JobBuffers{});
}

std::vector<std::vector<ByteRange>> GroupRanges(const std::vector<ByteRange>& ranges, uint64_t gap,
                                                size_t max_ranges) {
  std::vector<ByteRange> sorted;
  for (const ByteRange& r : ranges) {
    if (r.length > 0) sorted.push_back(r);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> merged;
  for (const ByteRange& r : sorted) {
    if (!merged.empty()) {
      ByteRange& last = merged.back();
      const uint64_t last_end = last.offset + last.length;
      // Touching or overlapping ranges always merge; others when the bytes
      // between them (fetched along) are fewer than gap.
      if (r.offset <= last_end || r.offset - last_end < gap) {
        last.length = std::max(last_end, r.offset + r.length) - last.offset;
        continue;
      }
    }
    merged.push_back(r);
  }
  const size_t per_group = std::max<size_t>(max_ranges, 1);
  std::vector<std::vector<ByteRange>> groups;
  for (size_t i = 0; i < merged.size(); i += per_group) {
    groups.emplace_back(
        merged.begin() + static_cast<std::ptrdiff_t>(i),
        merged.begin() + static_cast<std::ptrdiff_t>(std::min(merged.size(), i + per_group)));
  }
  return groups;
}

}  // namespace sync_agent
