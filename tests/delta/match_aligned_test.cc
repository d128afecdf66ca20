// MatchAligned and the RabinKarp weak sum it relies on.

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/delta/delta_format.h"
#include "common/delta/rsync_delta.h"
#include "tests/delta/delta_test_util.h"

namespace sync_agent {
namespace {

using testing::DeltaCase;
using testing::DeltaFiles;

uint32_t StoredWeakSum(const std::string& signature, uint64_t block) {
  auto header = delta_internal::ParseSignatureHeader(signature);
  EXPECT_TRUE(header.ok());
  std::string_view sums = delta_internal::SignatureBlockSums(signature, *header, block);
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(sums[i]);
  return v;
}

TEST(RabinKarpWeakSumTest, EqualsTheSumsLibrsyncStoresInSignatures) {
  DeltaFiles files;
  for (uint32_t block_len : {1u, 3u, 7u, 1000u, 1024u, 4096u}) {
    for (size_t size : {size_t{1}, size_t{5}, size_t{4099}, size_t{20000}}) {
      SCOPED_TRACE("block_len=" + std::to_string(block_len) + " size=" + std::to_string(size));
      std::string content = testing::RandomBytes(size, block_len * 31 + size);
      auto signature = files.Signature(files.Put("f", content), {block_len, 16});
      ASSERT_TRUE(signature.ok()) << signature.status().ToString();
      const uint64_t blocks = (size + block_len - 1) / block_len;
      for (uint64_t b = 0; b < blocks; ++b) {
        const size_t len = std::min<size_t>(block_len, size - b * block_len);
        ASSERT_EQ(RabinKarpWeakSum(content.data() + b * block_len, len),
                  StoredWeakSum(*signature, b))
            << "block " << b;
      }
    }
  }
}

class MatchAlignedTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MatchAlignedTest, PlanRebuildsNewWithTheSampledShifts) {
  const uint32_t block_len = GetParam();
  DeltaFiles files;
  for (const DeltaCase& dc : testing::MakeDeltaCases(block_len, 160 * 1024 + 77)) {
    SCOPED_TRACE(dc.name + " block_len=" + std::to_string(block_len));
    const std::string old_path = files.Put(dc.name + ".old", dc.old_content);
    auto signature = files.Signature(files.Put(dc.name + ".new", dc.new_content), {block_len, 16});
    ASSERT_TRUE(signature.ok()) << signature.status().ToString();
    auto old = files.OpenRandom(old_path, dc.old_content.size());
    auto sample = SampleMatch(*signature, dc.new_content.size(), *old, dc.old_content.size(), 64);
    ASSERT_TRUE(sample.ok()) << sample.status().ToString();
    std::vector<int64_t> shifts = {0};
    shifts.insert(shifts.end(), sample->shifts.begin(), sample->shifts.end());
    for (int threads : {1, 2, 3}) {
      auto plan = MatchAligned(*signature, dc.new_content.size(), *old, dc.old_content.size(),
                               shifts, threads);
      ASSERT_TRUE(plan.ok()) << plan.status().ToString();
      EXPECT_FALSE(old->read_outside());
      ASSERT_TRUE(testing::PlanIsWellFormed(*plan, dc.new_content.size(), dc.old_content.size()));
      // Random inputs: no weak sum collides, so the plan rebuilds new exactly.
      ASSERT_TRUE(testing::Rebuild(*plan, dc.old_content, dc.new_content) == dc.new_content);
      if (dc.old_content == dc.new_content) {
        EXPECT_EQ(plan->local_bytes(), dc.new_content.size());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BlockLengths, MatchAlignedTest, ::testing::Values(1024u, 4096u, 1000u));

TEST(MatchAlignedEditsTest, FindsInPlaceEditsAndShiftedContent) {
  DeltaFiles files;
  const uint32_t block_len = 1024;
  const std::string old_content = testing::RandomBytes(256 * 1024, 41);
  auto run = [&](const std::string& new_content, const std::vector<int64_t>& shifts) {
    auto signature = files.Signature(files.Put("new", new_content), {block_len, 16});
    EXPECT_TRUE(signature.ok());
    auto old = files.OpenRandom(files.Put("old", old_content), old_content.size());
    auto plan = MatchAligned(*signature, new_content.size(), *old, old_content.size(), shifts, 2);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_TRUE(testing::Rebuild(*plan, old_content, new_content) == new_content);
    return plan.ok() ? *plan : MatchPlan{};
  };
  // Two blocks rewritten in place: exactly those two are missing.
  std::string edited = old_content;
  std::memset(&edited[10 * 1024 + 5], 'x', 100);
  std::memset(&edited[100 * 1024], 'y', 1024);
  MatchPlan in_place = run(edited, {0});
  EXPECT_EQ(in_place.missing_bytes(), 2u * 1024);
  // 200 bytes inserted at the start: with shift -200 all but the first block is found.
  std::string inserted = std::string(200, 'z') + old_content;
  MatchPlan shifted = run(inserted, {0, -200});
  EXPECT_EQ(shifted.missing_bytes(), 1024u);
  MatchPlan unshifted = run(inserted, {0});
  EXPECT_EQ(unshifted.local_bytes(), 0u);
  // A signature for another size is refused.
  auto signature = files.Signature(files.Put("new", edited), {block_len, 16});
  auto old = files.OpenRandom(files.Put("old", old_content), old_content.size());
  EXPECT_EQ(MatchAligned(*signature, edited.size() + block_len, *old, old_content.size(), {0})
                .status()
                .code(),
            Status::Code::kCorruption);
}

}  // namespace
}  // namespace sync_agent
