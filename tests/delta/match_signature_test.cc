// MatchSignature round trips: signature(new) rolled over old must give a plan
// whose local copies (read from old) plus missing ranges (fetched from new)
// rebuild new exactly, and that finds every block a perfect matcher would.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/delta/librsync_job.h"
#include "common/delta/rsync_delta.h"
#include "tests/delta/delta_test_util.h"

namespace sync_agent {
namespace {

using delta_internal::JobBuffers;
using testing::DeltaCase;
using testing::DeltaFiles;

struct Matched {
  MatchPlan plan;
  bool read_outside = false;
};

Result<Matched> Match(DeltaFiles& files, const std::string& signature, uint64_t new_size,
                      const std::string& old_path, uint64_t old_size, int threads,
                      const JobBuffers& buffers = {}) {
  auto old = files.OpenRandom(old_path, old_size);
  SA_ASSIGN_OR_RETURN(MatchPlan plan, delta_internal::MatchSignature(signature, new_size, *old,
                                                                     old_size, threads, buffers));
  return Matched{std::move(plan), old->read_outside()};
}

class MatchSignatureTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(MatchSignatureTest, PlanRebuildsNewAndFindsEveryMatchableBlock) {
  const uint32_t block_len = GetParam();
  DeltaFiles files;
  for (const DeltaCase& dc : testing::MakeDeltaCases(block_len, 160 * 1024 + 77)) {
    SCOPED_TRACE(dc.name + " block_len=" + std::to_string(block_len));
    const std::string old_path = files.Put(dc.name + ".old", dc.old_content);
    const std::string new_path = files.Put(dc.name + ".new", dc.new_content);
    auto signature = files.Signature(new_path, {block_len, 16});
    ASSERT_TRUE(signature.ok()) << signature.status().ToString();
    const uint64_t new_size = dc.new_content.size();
    const uint64_t old_size = dc.old_content.size();
    const uint64_t matchable = testing::MatchableBytes(dc.old_content, dc.new_content, block_len);

    auto one = Match(files, *signature, new_size, old_path, old_size, 1);
    ASSERT_TRUE(one.ok()) << one.status().ToString();
    EXPECT_FALSE(one->read_outside);
    ASSERT_TRUE(testing::PlanIsWellFormed(one->plan, new_size, old_size));
    ASSERT_TRUE(testing::Rebuild(one->plan, dc.old_content, dc.new_content) == dc.new_content);
    EXPECT_EQ(one->plan.local_bytes(), matchable);

    for (int threads : {2, 3}) {
      SCOPED_TRACE("threads=" + std::to_string(threads));
      auto many =
          Match(files, *signature, new_size, old_path, old_size, threads, JobBuffers{8192, 8192});
      ASSERT_TRUE(many.ok()) << many.status().ToString();
      EXPECT_FALSE(many->read_outside);
      ASSERT_TRUE(testing::PlanIsWellFormed(many->plan, new_size, old_size));
      ASSERT_TRUE(testing::Rebuild(many->plan, dc.old_content, dc.new_content) == dc.new_content);
      // Parts restart the greedy scan at their boundaries; in these inputs
      // that never loses a block, and any extra (a short last block found at
      // a part's end) is a verified match too.
      EXPECT_GE(many->plan.local_bytes(), one->plan.local_bytes());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, MatchSignatureTest, ::testing::Values(1024u, 2048u, 4096u));

TEST(MatchSignatureTest, LocalBytesReflectWhatChanged) {
  DeltaFiles files;
  const uint32_t block_len = 2048;
  std::vector<DeltaCase> cases = testing::MakeDeltaCases(block_len, size_t{256} * 1024);
  auto local_fraction = [&](const std::string& name) {
    for (const DeltaCase& dc : cases) {
      if (dc.name != name) continue;
      const std::string old_path = files.Put(name + ".old", dc.old_content);
      const std::string new_path = files.Put(name + ".new", dc.new_content);
      auto signature = files.Signature(new_path, {block_len, 16});
      EXPECT_TRUE(signature.ok());
      auto matched =
          Match(files, *signature, dc.new_content.size(), old_path, dc.old_content.size(), 1);
      EXPECT_TRUE(matched.ok()) << matched.status().ToString();
      return static_cast<double>(matched->plan.local_bytes()) / dc.new_content.size();
    }
    ADD_FAILURE() << "no case " << name;
    return 0.0;
  };
  EXPECT_EQ(local_fraction("same"), 1.0);
  EXPECT_GE(local_fraction("shifted_200"), 0.98);
  EXPECT_GE(local_fraction("appended"), 0.98);
  EXPECT_GE(local_fraction("scattered_bytes"), 0.90);
  EXPECT_GE(local_fraction("rewritten_5pct"), 0.85);
  EXPECT_EQ(local_fraction("all_different"), 0.0);
  // Seven whole blocks, each found in old; the 100-byte tail is not in old.
  EXPECT_DOUBLE_EQ(local_fraction("repeated_blocks"),
                   (7.0 * block_len) / (7.0 * block_len + 100.0));
}

TEST(MatchSignatureTest, RepeatedBlocksOfNewAllComeFromOneOldCopy) {
  // librsync indexes a repeated block once; the plan must still take every
  // occurrence from old.
  DeltaFiles files;
  const uint32_t block_len = 1024;
  const std::string a = testing::RandomBytes(block_len, 31);
  const std::string b = testing::RandomBytes(block_len, 32);
  const std::string old_content = testing::RandomBytes(500, 33) + a + b;
  const std::string new_content = a + b + a + a + b + a;
  const std::string old_path = files.Put("old", old_content);
  const std::string new_path = files.Put("new", new_content);
  auto signature = files.Signature(new_path, {block_len, 16});
  ASSERT_TRUE(signature.ok());
  auto matched = Match(files, *signature, new_content.size(), old_path, old_content.size(), 1);
  ASSERT_TRUE(matched.ok()) << matched.status().ToString();
  EXPECT_EQ(matched->plan.local_bytes(), new_content.size());
  EXPECT_TRUE(matched->plan.missing.empty());
  EXPECT_TRUE(testing::Rebuild(matched->plan, old_content, new_content) == new_content);
}

TEST(MatchSignatureTest, LastShortBlockMatchesOnlyAtOldEnd) {
  DeltaFiles files;
  const uint32_t block_len = 1024;
  const std::string body = testing::RandomBytes(size_t{4} * block_len, 41);
  const std::string tail = testing::RandomBytes(300, 42);
  const std::string new_content = body + tail;
  auto signature = files.Signature(files.Put("new", new_content), {block_len, 16});
  ASSERT_TRUE(signature.ok());

  // The tail in the middle of old is not found (librsync only tries short
  // windows at the end of its input) ...
  const std::string old_middle = tail + body + testing::RandomBytes(50, 43);
  auto middle = Match(files, *signature, new_content.size(), files.Put("om", old_middle),
                      old_middle.size(), 1);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(middle->plan.local_bytes(), body.size());
  ASSERT_EQ(middle->plan.missing.size(), 1u);
  EXPECT_EQ(middle->plan.missing[0].offset, body.size());

  // ... at its end it is.
  const std::string old_end = testing::RandomBytes(77, 44) + body + tail;
  auto end =
      Match(files, *signature, new_content.size(), files.Put("oe", old_end), old_end.size(), 1);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->plan.local_bytes(), new_content.size());
  ASSERT_EQ(end->plan.local.size(), 1u);
  EXPECT_EQ(end->plan.local[0].old_offset, 77u);
}

TEST(MatchSignatureTest, BlockCountMustAgreeWithNewSize) {
  DeltaFiles files;
  const std::string new_content = testing::RandomBytes(size_t{10} * 1024, 51);
  const std::string old_path = files.Put("old", new_content);
  auto signature = files.Signature(files.Put("new", new_content), {1024, 16});
  ASSERT_TRUE(signature.ok());
  for (uint64_t wrong : {uint64_t{0}, uint64_t{9} * 1024, uint64_t{11} * 1024 + 1}) {
    auto matched = Match(files, *signature, wrong, old_path, new_content.size(), 1);
    ASSERT_FALSE(matched.ok());
    EXPECT_EQ(matched.status().code(), Status::Code::kCorruption);
    EXPECT_NE(matched.status().message().find("match signature"), std::string::npos);
  }
  // A size that makes ten blocks passes that check, but then the full last
  // block that old holds would reach past the new file's end.
  auto past_end = Match(files, *signature, 9 * 1024 + 1, old_path, new_content.size(), 1);
  ASSERT_FALSE(past_end.ok());
  EXPECT_EQ(past_end.status().code(), Status::Code::kCorruption);
  EXPECT_NE(past_end.status().message().find("past the end of the new file"), std::string::npos)
      << past_end.status().ToString();
  auto ok = Match(files, *signature, new_content.size(), old_path, new_content.size(), 1);
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
}

TEST(MatchSignatureTest, OldFileShorterThanClaimedIsAnIOError) {
  DeltaFiles files;
  const std::string content = testing::RandomBytes(size_t{8} * 1024, 61);
  auto signature = files.Signature(files.Put("new", content), {1024, 16});
  ASSERT_TRUE(signature.ok());
  const std::string old_path = files.Put("old", content.substr(0, 5000));
  auto old = files.OpenRandom(old_path, content.size());
  auto plan = MatchSignature(*signature, content.size(), *old, content.size());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), Status::Code::kIOError);
  EXPECT_NE(plan.status().message().find("old file ended at byte 5000"), std::string::npos)
      << plan.status().ToString();
}

TEST(MatchSignatureTest, PublicEntryPointMatchesInternalOne) {
  DeltaFiles files;
  const std::string old_content = testing::RandomBytes(size_t{64} * 1024, 71);
  const std::string new_content = testing::RandomBytes(300, 72) + old_content.substr(1000);
  const std::string old_path = files.Put("old", old_content);
  auto signature =
      files.Signature(files.Put("new", new_content), ChooseSignatureParams(new_content.size()));
  ASSERT_TRUE(signature.ok());
  auto old = files.OpenRandom(old_path, old_content.size());
  auto plan = MatchSignature(*signature, new_content.size(), *old, old_content.size(), 2);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(testing::Rebuild(*plan, old_content, new_content) == new_content);
  EXPECT_EQ(plan->local_bytes(), testing::MatchableBytes(old_content, new_content, 1024));
}

// ---- GroupRanges ---------------------------------------------------------

std::vector<std::vector<std::pair<uint64_t, uint64_t>>> Flat(
    const std::vector<std::vector<ByteRange>>& groups) {
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> out;
  for (const auto& g : groups) {
    out.emplace_back();
    for (const ByteRange& r : g) out.back().emplace_back(r.offset, r.length);
  }
  return out;
}

using Groups = std::vector<std::vector<std::pair<uint64_t, uint64_t>>>;

TEST(GroupRangesTest, EmptyInputGivesNoGroups) {
  EXPECT_TRUE(GroupRanges({}, 100, 4).empty());
  EXPECT_TRUE(GroupRanges({{10, 0}}, 100, 4).empty());
}

TEST(GroupRangesTest, MergesRangesCloserThanGap) {
  // Gaps between them: 10 (merged with gap 11, not with gap 10) and 100.
  std::vector<ByteRange> ranges = {{0, 10}, {20, 5}, {125, 5}};
  EXPECT_EQ(Flat(GroupRanges(ranges, 11, 10)), (Groups{{{0, 25}, {125, 5}}}));
  EXPECT_EQ(Flat(GroupRanges(ranges, 10, 10)), (Groups{{{0, 10}, {20, 5}, {125, 5}}}));
  EXPECT_EQ(Flat(GroupRanges(ranges, 101, 10)), (Groups{{{0, 130}}}));
}

TEST(GroupRangesTest, TouchingAndOverlappingRangesMergeEvenWithGapZero) {
  std::vector<ByteRange> ranges = {{10, 10}, {0, 10}, {15, 20}, {40, 1}};
  EXPECT_EQ(Flat(GroupRanges(ranges, 0, 10)), (Groups{{{0, 35}, {40, 1}}}));
}

TEST(GroupRangesTest, SortsInputAndSplitsIntoGroupsOfMaxRanges) {
  std::vector<ByteRange> ranges;
  for (uint64_t i = 7; i-- > 0;) ranges.push_back({i * 100, 10});
  EXPECT_EQ(
      Flat(GroupRanges(ranges, 5, 3)),
      (Groups{{{0, 10}, {100, 10}, {200, 10}}, {{300, 10}, {400, 10}, {500, 10}}, {{600, 10}}}));
  EXPECT_EQ(Flat(GroupRanges(ranges, 5, 7)).size(), 1u);
  // 0 is taken as 1: one range per request.
  EXPECT_EQ(Flat(GroupRanges(ranges, 5, 0)).size(), 7u);
}

TEST(GroupRangesTest, GroupsCoverEveryInputByte) {
  std::vector<ByteRange> ranges;
  uint64_t at = 0;
  for (int i = 0; i < 200; ++i) {
    at += 1 + (i * 37) % 300;
    ranges.push_back({at, 1 + static_cast<uint64_t>(i % 50)});
    at += ranges.back().length;
  }
  auto groups = GroupRanges(ranges, 128, 16);
  std::vector<ByteRange> all;
  for (const auto& g : groups) {
    EXPECT_LE(g.size(), 16u);
    all.insert(all.end(), g.begin(), g.end());
  }
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_GE(all[i].offset, all[i - 1].offset + all[i - 1].length + 128);
  }
  for (const ByteRange& r : ranges) {
    bool inside = false;
    for (const ByteRange& g : all) {
      inside |= r.offset >= g.offset && r.offset + r.length <= g.offset + g.length;
    }
    EXPECT_TRUE(inside) << r.offset;
  }
}

TEST(SampleMatchTest, TellsSharedFromUnrelatedContent) {
  DeltaFiles files;
  const uint32_t block_len = 1024;
  const std::string new_content = testing::RandomBytes(512 * 1024, 31);
  const std::string new_path = files.Put("new", new_content);
  auto signature = files.Signature(new_path, {block_len, 16});
  ASSERT_TRUE(signature.ok()) << signature.status().ToString();
  auto sample = [&](const std::string& name, const std::string& old_content, int windows) {
    const std::string old_path = files.Put(name, old_content);
    auto old = files.OpenRandom(old_path, old_content.size());
    auto got = SampleMatch(*signature, new_content.size(), *old, old_content.size(), windows);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_FALSE(old->read_outside());
    return got.ok() ? *got : MatchSample{};
  };

  // The same content shifted by 200 bytes: every window finds blocks.
  MatchSample same = sample("shifted", testing::RandomBytes(200, 1) + new_content, 32);
  EXPECT_EQ(same.windows, 32);
  EXPECT_EQ(same.windows_matched, 32);
  EXPECT_GT(same.bytes_matched, same.bytes_sampled / 2);

  // Unrelated content: no window finds anything.
  MatchSample unrelated = sample("unrelated", testing::RandomBytes(512 * 1024, 32), 32);
  EXPECT_EQ(unrelated.windows, 32);
  EXPECT_EQ(unrelated.windows_matched, 0);
  EXPECT_EQ(unrelated.bytes_matched, 0u);

  // Half shared: some windows match, not all.
  std::string half = new_content.substr(0, 256 * 1024) + testing::RandomBytes(256 * 1024, 33);
  MatchSample mixed = sample("half", half, 32);
  EXPECT_GT(mixed.windows_matched, 8);
  EXPECT_LT(mixed.windows_matched, 24);

  // An old file shorter than a window, and an empty one.
  MatchSample tiny = sample("tiny", new_content.substr(0, 1500), 8);
  EXPECT_EQ(tiny.windows, 8);
  EXPECT_EQ(tiny.windows_matched, 8);
  MatchSample empty = sample("empty", "", 8);
  EXPECT_EQ(empty.windows, 0);

  // A corrupt signature is an error, not a guess.
  std::string bad = *signature;
  bad.resize(bad.size() - 3);
  auto old = files.OpenRandom(files.Put("x", new_content), new_content.size());
  EXPECT_EQ(SampleMatch(bad, new_content.size(), *old, new_content.size(), 4).status().code(),
            Status::Code::kCorruption);
}

}  // namespace
}  // namespace sync_agent
