// Round trips in the spirit of librsync's tests/triple.test: for every input
// pair, block size and buffer size, signature(old) -> delta(new) ->
// ApplyDelta(old) must give new back exactly, and the delta must parse into
// commands that rebuild new.

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

struct BufferCase {
  const char* name;
  JobBuffers buffers;
  size_t read_chunk;  // 0: whole reads
};

const BufferCase kBufferCases[] = {
    {"default", JobBuffers{}, 0},
    {"odd", JobBuffers{4093, 7919}, 997},
    {"tiny", JobBuffers{100, 64}, 0},
};

// Rebuilds new from ParseDelta's commands, checking each one's bounds.
::testing::AssertionResult CommandsRebuild(const std::vector<DeltaCommand>& commands,
                                           const std::string& delta, const std::string& old_content,
                                           const std::string& new_content) {
  std::string out;
  for (const DeltaCommand& c : commands) {
    if (c.kind == DeltaCommand::Kind::kLiteral) {
      if (c.source_offset + c.length > delta.size()) {
        return ::testing::AssertionFailure() << "literal outside the delta";
      }
      out.append(delta, c.source_offset, c.length);
    } else {
      if (c.source_offset + c.length > old_content.size()) {
        return ::testing::AssertionFailure() << "copy outside the basis";
      }
      out.append(old_content, c.source_offset, c.length);
    }
  }
  if (out != new_content) {
    return ::testing::AssertionFailure() << "commands rebuild " << out.size() << " bytes, not the "
                                         << new_content.size() << " of new";
  }
  return ::testing::AssertionSuccess();
}

class TripleTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(TripleTest, SignatureDeltaPatchRebuildsNewExactly) {
  const uint32_t block_len = GetParam();
  DeltaFiles files;
  for (const DeltaCase& dc : testing::MakeDeltaCases(block_len, 100 * 1024 + 77)) {
    const std::string old_path = files.Put(dc.name + ".old", dc.old_content);
    const std::string new_path = files.Put(dc.name + ".new", dc.new_content);
    for (const BufferCase& bc : kBufferCases) {
      SCOPED_TRACE(dc.name + " block_len=" + std::to_string(block_len) + " buffers=" + bc.name);
      auto signature = files.Signature(old_path, {block_len, 16}, bc.buffers, bc.read_chunk);
      ASSERT_TRUE(signature.ok()) << signature.status().ToString();
      const uint64_t blocks = (dc.old_content.size() + block_len - 1) / block_len;
      ASSERT_EQ(signature->size(), 12 + blocks * 20);

      auto delta = files.Delta(*signature, new_path, bc.buffers, bc.read_chunk);
      ASSERT_TRUE(delta.ok()) << delta.status().ToString();

      auto rebuilt = testing::Apply(files, old_path, dc.old_content.size(), *delta, bc.buffers);
      ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
      ASSERT_EQ(rebuilt->size(), dc.new_content.size());
      ASSERT_TRUE(*rebuilt == dc.new_content) << "patched output differs from new";

      auto commands = ParseDelta(*delta);
      ASSERT_TRUE(commands.ok()) << commands.status().ToString();
      EXPECT_TRUE(CommandsRebuild(*commands, *delta, dc.old_content, dc.new_content));
      if (dc.old_content == dc.new_content) {
        for (const DeltaCommand& c : *commands) {
          EXPECT_EQ(c.kind, DeltaCommand::Kind::kCopy) << "identical files need no literal";
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, TripleTest, ::testing::Values(1024u, 2048u, 4096u));

TEST(TripleTest, BlockLenNotAPowerOfTwo) {
  DeltaFiles files;
  for (const DeltaCase& dc : testing::MakeDeltaCases(1000, 30 * 1000 + 3)) {
    SCOPED_TRACE(dc.name);
    const std::string old_path = files.Put(dc.name + ".old", dc.old_content);
    const std::string new_path = files.Put(dc.name + ".new", dc.new_content);
    auto signature = files.Signature(old_path, {1000, 8});
    ASSERT_TRUE(signature.ok()) << signature.status().ToString();
    auto delta = files.Delta(*signature, new_path);
    ASSERT_TRUE(delta.ok()) << delta.status().ToString();
    auto rebuilt = testing::Apply(files, old_path, dc.old_content.size(), *delta);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
    EXPECT_TRUE(*rebuilt == dc.new_content);
  }
}

TEST(TripleTest, ShiftedFileIsMostlyCopies) {
  // The delta must actually use the basis: new = 200 new bytes + old.
  DeltaFiles files;
  const std::string old_content = testing::RandomBytes(size_t{256} * 1024, 21);
  const std::string new_content = testing::RandomBytes(200, 22) + old_content;
  const std::string old_path = files.Put("old", old_content);
  const std::string new_path = files.Put("new", new_content);
  auto signature = files.Signature(old_path, {2048, 16});
  ASSERT_TRUE(signature.ok());
  auto delta = files.Delta(*signature, new_path);
  ASSERT_TRUE(delta.ok());
  auto commands = ParseDelta(*delta);
  ASSERT_TRUE(commands.ok());
  uint64_t copied = 0;
  for (const DeltaCommand& c : *commands) {
    if (c.kind == DeltaCommand::Kind::kCopy) copied += c.length;
  }
  EXPECT_EQ(copied, old_content.size());
  EXPECT_LT(delta->size(), 2000u);
}

}  // namespace
}  // namespace sync_agent
