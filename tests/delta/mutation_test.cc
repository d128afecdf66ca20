// Corrupt input, in the spirit of librsync's tests/mutate.test: random byte
// flips (seeded) and every truncation of real signatures and deltas. Each
// entry point must return a clean error or, for a stream that stays well
// formed, exactly what the stream says; never crash, hang, or read outside
// the basis. Run under ASan/UBSan too (-DSA_SANITIZE=ON).

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/delta/librsync_job.h"
#include "common/delta/rsync_delta.h"
#include "tests/delta/delta_test_util.h"

namespace sync_agent {
namespace {

using delta_internal::JobBuffers;
using testing::DeltaFiles;

constexpr uint32_t kBlockLen = 1024;

// What a well-formed delta's commands produce from basis, or nullopt-like
// false if a copy leaves the basis.
bool Expected(const std::vector<DeltaCommand>& commands, const std::string& delta,
              const std::string& basis, std::string* out) {
  for (const DeltaCommand& c : commands) {
    if (c.kind == DeltaCommand::Kind::kLiteral) {
      out->append(delta, c.source_offset, c.length);
    } else {
      if (c.source_offset + c.length > basis.size()) return false;
      out->append(basis, c.source_offset, c.length);
    }
  }
  return true;
}

class MutationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Copies and literals of every size class: moved, inserted, rewritten
    // and appended data over a 48 KiB file.
    old_ = testing::RandomBytes(48 * 1024 + 13, 1);
    new_ = testing::RandomBytes(100, 2) + old_.substr(0, 20000) + testing::RandomBytes(70, 3) +
           old_.substr(30000) + old_.substr(5000, 3000) + testing::RandomBytes(300, 4);
    old_path_ = files_.Put("old", old_);
    new_path_ = files_.Put("new", new_);
    auto old_sig = files_.Signature(old_path_, {kBlockLen, 16});
    ASSERT_TRUE(old_sig.ok());
    auto delta = files_.Delta(*old_sig, new_path_);
    ASSERT_TRUE(delta.ok());
    delta_ = *delta;
    auto new_sig = files_.Signature(new_path_, {kBlockLen, 16});
    ASSERT_TRUE(new_sig.ok());
    new_sig_ = *new_sig;
    auto commands = ParseDelta(delta_);
    ASSERT_TRUE(commands.ok());
    commands_ = *commands;
  }

  // Flips 1-3 bytes. Half the time it aims at the magic, the end, or the
  // bytes just before literal data (command bytes and their parameters),
  // where most flips change the meaning rather than the data.
  std::string Mutate(const std::string& s, bool aim_at_commands) {
    std::string m = s;
    const int flips = 1 + static_cast<int>(rng_() % 3);
    for (int i = 0; i < flips; ++i) {
      size_t at = rng_() % m.size();
      if (aim_at_commands && rng_() % 2 == 0) {
        switch (rng_() % 3) {
          case 0:
            at = rng_() % 4;
            break;
          case 1:
            at = m.size() - 1 - rng_() % std::min<size_t>(m.size(), 24);
            break;
          default: {
            const DeltaCommand& c = commands_[rng_() % commands_.size()];
            uint64_t back = 1 + rng_() % 9;
            at = c.kind == DeltaCommand::Kind::kLiteral && c.source_offset >= back
                     ? c.source_offset - back
                     : at;
          }
        }
      }
      m[at] = static_cast<char>(m[at] ^ static_cast<char>(1 + rng_() % 255));
    }
    return m;
  }

  DeltaFiles files_;
  std::string old_, new_, old_path_, new_path_, delta_, new_sig_;
  std::vector<DeltaCommand> commands_;
  std::mt19937_64 rng_{20240501};
};

TEST_F(MutationTest, MutatedDeltasFailCleanlyOrDoExactlyWhatTheySay) {
  int rejected = 0, same = 0, different = 0;
  for (int i = 0; i < 1500; ++i) {
    SCOPED_TRACE("mutation " + std::to_string(i));
    const std::string m = Mutate(delta_, true);
    auto parsed = ParseDelta(m);
    auto basis = files_.OpenRandom(old_path_, old_.size());
    std::string out;
    Status applied = ApplyDelta(*basis, old_.size(), m, testing::AppendTo(&out));
    ASSERT_FALSE(basis->read_outside());

    std::string expected;
    if (!parsed.ok()) {
      ASSERT_EQ(parsed.status().code(), Status::Code::kCorruption) << parsed.status().ToString();
      ASSERT_EQ(applied.code(), Status::Code::kCorruption) << applied.ToString();
      ASSERT_TRUE(out.empty());
      ++rejected;
    } else if (!Expected(*parsed, m, old_, &expected)) {
      ASSERT_EQ(applied.code(), Status::Code::kCorruption) << applied.ToString();
      ASSERT_TRUE(out.empty());
      ++rejected;
    } else {
      ASSERT_TRUE(applied.ok()) << applied.ToString();
      ASSERT_TRUE(out == expected) << "librsync and ParseDelta disagree";
      ++(out == new_ ? same : different);
    }

    // librsync alone (no validating pass) must not crash or leave the basis
    // either; when it succeeds on a stream we accept, it agrees with us.
    auto raw_basis = files_.OpenRandom(old_path_, old_.size());
    std::string raw_out;
    Status raw = delta_internal::PatchWithLibrsync(*raw_basis, old_.size(), m,
                                                   testing::AppendTo(&raw_out), JobBuffers{});
    ASSERT_FALSE(raw_basis->read_outside());
    if (!raw.ok()) {
      EXPECT_EQ(raw.code(), Status::Code::kCorruption) << raw.ToString();
    } else if (applied.ok()) {
      EXPECT_TRUE(raw_out == out);
    }
  }
  // The mix matters: most mutations must be caught, and some must survive
  // (flips inside literal data) to exercise the success path.
  EXPECT_GT(rejected, 300);
  EXPECT_GT(different, 100);
  RecordProperty("rejected", rejected);
  RecordProperty("same", same);
  RecordProperty("different", different);
}

TEST_F(MutationTest, MutatedSignaturesFailCleanlyOrStillMatchCorrectly) {
  int rejected = 0, loaded = 0;
  for (int i = 0; i < 400; ++i) {
    SCOPED_TRACE("mutation " + std::to_string(i));
    const std::string m = Mutate(new_sig_, false);
    auto sig = Signature::Load(m);
    if (!sig.ok()) {
      ASSERT_TRUE(sig.status().code() == Status::Code::kCorruption ||
                  sig.status().code() == Status::Code::kUnsupported)
          << sig.status().ToString();
      ++rejected;
    } else {
      ++loaded;
      // As a basis signature: a corrupt sum matches nothing, so the delta
      // of old against it still rebuilds old from "new" exactly.
      std::string delta;
      auto input = files_.OpenSequential(old_path_);
      ASSERT_TRUE(ComputeDelta(*sig, input.get(), testing::AppendTo(&delta)).ok());
      auto rebuilt = testing::Apply(files_, new_path_, new_.size(), delta);
      ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
      EXPECT_TRUE(*rebuilt == old_);
    }

    // MatchSignature: a clean error, or a plan that still rebuilds new.
    const int threads = i % 4 == 0 ? 2 : 1;
    auto old = files_.OpenRandom(old_path_, old_.size());
    auto plan = MatchSignature(m, new_.size(), *old, old_.size(), threads);
    ASSERT_FALSE(old->read_outside());
    if (!plan.ok()) {
      ASSERT_TRUE(plan.status().code() == Status::Code::kCorruption ||
                  plan.status().code() == Status::Code::kUnsupported)
          << plan.status().ToString();
    } else {
      ASSERT_TRUE(testing::PlanIsWellFormed(*plan, new_.size(), old_.size()));
      EXPECT_TRUE(testing::Rebuild(*plan, old_, new_) == new_);
    }
  }
  EXPECT_GT(loaded, 200);  // most flips hit block sums, which stay loadable
  EXPECT_GT(rejected, 5);
}

TEST_F(MutationTest, EveryTruncatedDeltaIsCorruption) {
  for (size_t k = 0; k < delta_.size(); ++k) {
    SCOPED_TRACE("truncated to " + std::to_string(k) + " of " + std::to_string(delta_.size()));
    const std::string prefix = delta_.substr(0, k);
    auto parsed = ParseDelta(prefix);
    ASSERT_EQ(parsed.status().code(), Status::Code::kCorruption);
    ASSERT_NE(parsed.status().message().find("truncated"), std::string::npos)
        << parsed.status().ToString();
    std::string out;
    auto basis = files_.OpenRandom(old_path_, old_.size());
    ASSERT_EQ(ApplyDelta(*basis, old_.size(), prefix, testing::AppendTo(&out)).code(),
              Status::Code::kCorruption);
    ASSERT_TRUE(out.empty());
    Status raw = delta_internal::PatchWithLibrsync(*basis, old_.size(), prefix,
                                                   testing::AppendTo(&out), JobBuffers{});
    ASSERT_EQ(raw.code(), Status::Code::kCorruption) << raw.ToString();
    ASSERT_FALSE(basis->read_outside());
  }
}

TEST_F(MutationTest, EveryTruncatedSignatureIsCorruption) {
  const size_t entry = 4 + 16;
  for (size_t k = 0; k < new_sig_.size(); ++k) {
    SCOPED_TRACE("truncated to " + std::to_string(k) + " of " + std::to_string(new_sig_.size()));
    const std::string prefix = new_sig_.substr(0, k);
    auto sig = Signature::Load(prefix);
    if (k >= 12 && (k - 12) % entry == 0) {
      // Cut between block entries: a well-formed signature of fewer blocks,
      // which only the new file's size can expose.
      ASSERT_TRUE(sig.ok()) << sig.status().ToString();
      EXPECT_EQ(sig->block_count(), (k - 12) / entry);
    } else {
      ASSERT_EQ(sig.status().code(), Status::Code::kCorruption) << sig.status().ToString();
      ASSERT_NE(sig.status().message().find("truncated"), std::string::npos)
          << sig.status().ToString();
    }
    auto old = files_.OpenRandom(old_path_, old_.size());
    auto plan = MatchSignature(prefix, new_.size(), *old, old_.size());
    ASSERT_EQ(plan.status().code(), Status::Code::kCorruption) << plan.status().ToString();
  }
}

}  // namespace
}  // namespace sync_agent
