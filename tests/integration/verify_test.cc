// `sync-agent verify` and `verify --repair` on a real node: damage made on
// disk the way a failing disk, an operator or an intruder would.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

class VerifyTest : public AgentFixture {
 protected:
  void SetUp() override {
    WriteFile(model_ + "/config.json", "{\"layers\": 2}");
    WriteFile(model_ + "/weights.bin", RandomBytes(3 << 20, 7));
    WriteFile(model_ + "/nested/tokenizer.json", "{\"v\": 1}");
    rev_ = Publish();
    url_ = StartBuiltinServer();
    WriteConfig({url_});
    ProcessResult r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(DiffTrees(model_, Served()), "");
  }
  ProcessResult Verify(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"verify", "--config", config_};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunAgent(args);
  }
  std::string Tree() const { return mirror_ + "/.sync-agent/trees/" + kRepo + "/" + rev_; }
  // Changes bytes in place, keeping the size and the inode: what bit rot or
  // a careless write through a hard link does.
  static void FlipByte(const std::string& path, off_t at) {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << path;
    char c = 0;
    ASSERT_EQ(::pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    ASSERT_EQ(::pwrite(fd, &c, 1, at), 1);
    ::close(fd);
  }
  std::string rev_, url_;
};

TEST_F(VerifyTest, ACleanNodeVerifiesAndStatusSaysWhen) {
  ProcessResult r = Verify();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("0 missing, 0 damaged, 0 unexpected"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(size and xxh3-128)"), std::string::npos) << r.out;
  r = Verify({"--full", kRepo});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("(sha256)"), std::string::npos) << r.out;
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
  EXPECT_NE(st.out.find("last verify:     "), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("by sha256: "), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("all well"), std::string::npos) << st.out;
  st = Status({"--json"});
  EXPECT_NE(st.out.find("\"last_verify\":{\"finished_at\":"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("\"full\":true"), std::string::npos) << st.out;
}

TEST_F(VerifyTest, DamageMissingAndUnexpectedFilesAreEachNamed) {
  FlipByte(Tree() + "/weights.bin", 1000);
  ASSERT_EQ(::unlink((Tree() + "/nested/tokenizer.json").c_str()), 0);
  WriteFile(Tree() + "/planted.bin", "not ours");
  ASSERT_EQ(::chmod((Tree() + "/config.json").c_str(), 0644), 0);

  ProcessResult r = Verify();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string label = std::string(" (") + kRepo + " revision " + rev_ + " ";
  EXPECT_NE(r.out.find("damaged: " + Tree() + "/weights.bin" + label + "weights.bin): xxh3-128 "),
            std::string::npos)
      << r.out;
  // The object store shares the inode: its copy is named too.
  EXPECT_NE(r.out.find("damaged: " + state_ + "/objects/"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing: " + Tree() + "/nested/tokenizer.json" + label +
                       "nested/tokenizer.json): not on disk"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("unexpected: " + Tree() + "/planted.bin"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("damaged: " + Tree() + "/config.json" + label +
                       "config.json): mode 0644, expected 0444"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("run `sync-agent verify --repair`"), std::string::npos) << r.err;
  r = Verify({"--full"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("weights.bin): sha256 "), std::string::npos) << r.out;

  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1) << st.out;
  EXPECT_NE(st.out.find("FAILING"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("the last verify found"), std::string::npos) << st.out;
  // Verify changed nothing: the damage is still there for an operator to see.
  EXPECT_TRUE(PathExists(Tree() + "/planted.bin"));
}

TEST_F(VerifyTest, RepairFetchesRebuildsAndSwapsInTheRevision) {
  const std::string weights = ReadFile(model_ + "/weights.bin");
  FlipByte(Tree() + "/weights.bin", 5);
  ASSERT_EQ(::unlink((Tree() + "/nested/tokenizer.json").c_str()), 0);
  WriteFile(Tree() + "/planted.bin", "not ours");
  struct stat before;
  ASSERT_EQ(::stat(Tree().c_str(), &before), 0);
  // A reader that opened the damaged file before the repair keeps its inode.
  int reader = ::open((Served() + "/weights.bin").c_str(), O_RDONLY);
  ASSERT_GE(reader, 0);

  ProcessResult r = Verify({"--repair"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // The weights again; the tokenizer's object was still in the store.
  EXPECT_NE(r.out.find("repaired acme/llm-7b: fetched 1 content (3.0 MiB) again"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("rebuilt and swapped in " + rev_), std::string::npos) << r.out;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(ReadFile(Served() + "/weights.bin"), weights);
  EXPECT_FALSE(PathExists(Served() + "/planted.bin"));
  // A new tree took the old one's place (the served file was not written in place).
  struct stat after;
  ASSERT_EQ(::stat(Tree().c_str(), &after), 0);
  EXPECT_NE(before.st_ino, after.st_ino);
  char c = 0;
  ASSERT_EQ(::pread(reader, &c, 1, 5), 1);
  EXPECT_NE(c, weights[5]);  // the reader still sees its (damaged) inode
  ::close(reader);
  EXPECT_EQ(ServedRevision(), rev_);

  r = Verify({"--full"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 0) << st.out;
}

TEST_F(VerifyTest, RepairRestoresALostServedLinkAndObject) {
  ASSERT_EQ(::unlink(Served().c_str()), 0);
  std::filesystem::remove_all(state_ + "/objects");
  ProcessResult r = Verify();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("missing: " + Served() + " (acme/llm-7b revision " + rev_ +
                       "): the served link is gone"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("is not in the store"), std::string::npos) << r.out;
  r = Verify({"--repair"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(ServedRevision(), rev_);
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(Verify({"--full"}).exit_code, 0);
}

TEST_F(VerifyTest, RepairWithoutASourceSaysSoAndLosesNothing) {
  FlipByte(Tree() + "/config.json", 2);
  const std::string damaged = ReadFile(Served() + "/config.json");
  server_.reset();  // the only source is gone
  ProcessResult r = Verify({"--repair"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("could not repair acme/llm-7b"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no source gave config.json"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("still damaged: " + Tree() + "/config.json"), std::string::npos) << r.out;
  // The served tree is as it was: nothing removed, nothing half-built.
  EXPECT_EQ(ReadFile(Served() + "/config.json"), damaged);
  EXPECT_EQ(ReadFile(Served() + "/weights.bin"), ReadFile(model_ + "/weights.bin"));
}

TEST_F(VerifyTest, ARunningSyncKeepsVerifyOut) {
  int fd = ::open((state_ + "/lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ProcessResult r = Verify();
  EXPECT_EQ(r.exit_code, 75) << r.err;
  ::close(fd);
  r = Verify({"acme/unknown"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("repository acme/unknown is not in"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sync_agent::testing
