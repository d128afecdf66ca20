// MatchAligned: the fast path of signature matching for the common edits of
// model files (tensors rewritten in place, data appended or cut, a header
// that grew by a few bytes). Block i of the new file is looked for only at
// offset i * block_len + shift of the old file, for a few shifts, by its
// weak (RabinKarp) sum alone: no rolling, no BLAKE2. That is several times
// cheaper than MatchSignature, and a 32-bit sum can lie, so callers must
// verify the rebuilt file (they do: sha256) and fall back to MatchSignature.

#include <algorithm>
#include <system_error>
#include <thread>
#include <vector>

#include "common/delta/delta_format.h"
#include "common/delta/librsync_job.h"
#include "common/delta/rsync_delta.h"
#include "common/fs/env.h"

namespace sync_agent {
namespace {

constexpr std::string_view kStage = "match aligned blocks";
// librsync's RabinKarp weak sum (src/rabinkarp.h): starting from 1, each
// byte b makes hash = hash * kMult + b, modulo 2^32.
constexpr uint32_t kRabinKarpSeed = 1;
constexpr uint32_t kRabinKarpMult = 0x08104225u;

uint32_t ReadBigEndian32(std::string_view s) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(s[3]));
}

}  // namespace

uint32_t RabinKarpWeakSum(const char* data, size_t n) {
  // Four interleaved lanes break the multiply chain: with m = kMult,
  // hash = seed * m^n + sum b_j * m^(n-1-j), and lane k sums the bytes j = k
  // (mod 4) with powers of m^4, scaled by m^(3-k) at the end.
  const auto* p = reinterpret_cast<const uint8_t*>(data);
  const uint32_t m = kRabinKarpMult;
  const uint32_t m2 = m * m, m3 = m2 * m, m4 = m2 * m2;
  uint32_t lane[4] = {0, 0, 0, 0};
  uint32_t mpow_n = 1;  // m^(4 * groups)
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    lane[0] = lane[0] * m4 + p[i];
    lane[1] = lane[1] * m4 + p[i + 1];
    lane[2] = lane[2] * m4 + p[i + 2];
    lane[3] = lane[3] * m4 + p[i + 3];
    mpow_n *= m4;
  }
  uint32_t hash = kRabinKarpSeed * mpow_n + lane[0] * m3 + lane[1] * m2 + lane[2] * m + lane[3];
  for (; i < n; ++i) hash = hash * m + p[i];
  return hash;
}

namespace delta_internal {

Result<MatchPlan> MatchAligned(std::string_view signature_bytes, uint64_t new_size,
                               const RandomAccessFile& old, uint64_t old_size,
                               const std::vector<int64_t>& shifts, int threads) {
  SA_ASSIGN_OR_RETURN(SignatureHeader header,
                      ParseSignatureFor(signature_bytes, new_size, kStage));
  const uint64_t block = header.block_len;
  const uint64_t blocks = header.block_count;
  // found[i]: old offset of block i, or -1.
  std::vector<int64_t> found(blocks, -1);
  auto scan = [&](uint64_t first, uint64_t last, Status* status) {
    std::vector<char> buf(block);
    for (uint64_t i = first; i < last; ++i) {
      const uint64_t at = i * block;
      const uint64_t len = std::min<uint64_t>(block, new_size - at);
      const uint32_t want = ReadBigEndian32(SignatureBlockSums(signature_bytes, header, i));
      for (int64_t shift : shifts) {
        const int64_t old_at = static_cast<int64_t>(at) + shift;
        if (old_at < 0 || static_cast<uint64_t>(old_at) + len > old_size) continue;
        auto got = old.ReadAt(static_cast<uint64_t>(old_at), buf.data(), len);
        if (!got.ok()) {
          *status = got.status();
          return;
        }
        if (*got != len) {
          *status = Status::IOError(kStage, "the old file ended at byte " +
                                                std::to_string(old_at + *got) + ", expected " +
                                                std::to_string(old_size) + " bytes");
          return;
        }
        if (RabinKarpWeakSum(buf.data(), len) == want) {
          found[i] = old_at;
          break;
        }
      }
    }
  };
  const uint64_t parts = static_cast<uint64_t>(std::clamp(threads, 1, 64));
  const uint64_t per_part = (blocks + parts - 1) / std::max<uint64_t>(parts, 1);
  std::vector<Status> statuses(parts);
  std::vector<std::thread> workers;
  for (uint64_t p = 1; p < parts && p * per_part < blocks; ++p) {
    uint64_t first = p * per_part, last = std::min(blocks, first + per_part);
    try {
      workers.emplace_back(scan, first, last, &statuses[p]);
    } catch (const std::system_error&) {
      scan(first, last, &statuses[p]);
    }
  }
  scan(0, std::min(blocks, per_part), &statuses[0]);
  for (std::thread& t : workers) t.join();
  for (const Status& s : statuses) SA_RETURN_IF_ERROR(s);

  MatchPlan plan;
  for (uint64_t i = 0; i < blocks; ++i) {
    const uint64_t at = i * block;
    const uint64_t len = std::min<uint64_t>(block, new_size - at);
    if (found[i] < 0) {
      if (!plan.missing.empty() && plan.missing.back().end() == at) {
        plan.missing.back().length += len;
      } else {
        plan.missing.push_back({at, len});
      }
      continue;
    }
    const uint64_t old_at = static_cast<uint64_t>(found[i]);
    if (!plan.local.empty()) {
      LocalCopy& last = plan.local.back();
      if (last.new_offset + last.length == at && last.old_offset + last.length == old_at) {
        last.length += len;
        continue;
      }
    }
    plan.local.push_back({at, old_at, len});
  }
  return plan;
}

}  // namespace delta_internal

Result<MatchPlan> MatchAligned(std::string_view signature_bytes, uint64_t new_size,
                               const RandomAccessFile& old, uint64_t old_size,
                               const std::vector<int64_t>& shifts, int threads) {
  return delta_internal::MatchAligned(signature_bytes, new_size, old, old_size, shifts, threads);
}

}  // namespace sync_agent
