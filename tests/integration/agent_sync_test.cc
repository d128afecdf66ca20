// The real sync-agent binary against the built-in server and a real nginx.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

enum class ServerKind { kBuiltin, kNginx };

class RevisionChangeTest : public AgentFixture, public ::testing::WithParamInterface<ServerKind> {
 protected:
  std::string StartServer() {
    return GetParam() == ServerKind::kBuiltin ? StartBuiltinServer() : StartNginx();
  }
};

TEST_P(RevisionChangeTest, EveryKindOfChangeArrivesExactly) {
  std::string weights = RandomBytes(6 << 20, 1);
  std::string shard = RandomBytes(2 << 20, 2);
  WriteFile(model_ + "/config.json", "{\"layers\": 2}");
  WriteFile(model_ + "/model.safetensors", weights);
  WriteFile(model_ + "/shards/a/part-1.bin", shard);
  WriteFile(model_ + "/tokenizer.json", "{\"v\": 1}");
  WriteFile(model_ + "/to-delete.txt", "gone soon");
  WriteFile(model_ + "/empty", "");
  WriteFile(model_ + "/names/with space ünïcode 日本.txt", "名前");
  std::string rev1 = Publish();
  std::string url = StartServer();
  ASSERT_FALSE(url.empty());
  WriteConfig({url});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(ServedRevision(), rev1);

  // Modify, add, delete, rename, move between directories.
  WriteFile(model_ + "/config.json", "{\"layers\": 3}");
  WriteFile(model_ + "/added/new.txt", "brand new");
  ASSERT_EQ(::unlink((model_ + "/to-delete.txt").c_str()), 0);
  ASSERT_EQ(::rename((model_ + "/model.safetensors").c_str(),
                     (model_ + "/model-renamed.safetensors").c_str()),
            0);
  MakeDirs(model_ + "/shards/b");
  ASSERT_EQ(::rename((model_ + "/shards/a/part-1.bin").c_str(),
                     (model_ + "/shards/b/part-1.bin").c_str()),
            0);
  std::string rev2 = Publish();
  ASSERT_NE(rev1, rev2);
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(ServedRevision(), rev2);
  EXPECT_FALSE(PathExists(Served() + "/to-delete.txt"));
  EXPECT_FALSE(PathExists(Served() + "/shards/a"));

  if (GetParam() == ServerKind::kNginx) {
    // The renamed and moved files were not downloaded a second time.
    ASSERT_TRUE(nginx_->WaitForAccessLog(1));
    int weight_fetches = 0;
    for (const auto& e : nginx_->ReadAccessLog()) {
      if (e.uri == ObjectUri(weights) && e.status / 100 == 2) ++weight_fetches;
      EXPECT_NE(e.uri, ObjectUri(shard) + "x");
    }
    EXPECT_EQ(weight_fetches, 1);
  }
  // A third run finds nothing to do.
  r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("up to date"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Servers, RevisionChangeTest,
                         ::testing::Values(ServerKind::kBuiltin, ServerKind::kNginx),
                         [](const auto& info) {
                           return info.param == ServerKind::kBuiltin ? "Builtin" : "Nginx";
                         });

class AgentTest : public AgentFixture {};

// Reads the served tree while revisions are swapped underneath and fails if a
// pass ever sees files of two revisions, a missing file or a partial file.
TEST_F(AgentTest, ReadersNeverSeeAMixOfRevisions) {
  constexpr int kFiles = 12;
  auto write_revision = [&](int n) {
    for (int f = 0; f < kFiles; ++f) {
      // Every file of revision n holds n, padded to a size that varies per revision.
      WriteFile(model_ + "/d" + std::to_string(f % 3) + "/f" + std::to_string(f),
                std::to_string(n) + std::string(1000 + n * 37, '.'));
    }
  };
  write_revision(0);
  Publish();
  WriteConfig({"file://" + pub_});
  ASSERT_EQ(Once().exit_code, 0);

  std::atomic<bool> done{false};
  std::atomic<int> passes{0};
  std::string violation;
  std::thread reader([&] {
    while (!done.load() && violation.empty()) {
      // One pass resolves the repository once (a directory descriptor), as a
      // consistent reader would, and reads every file through it.
      int dir = ::open(Served().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir < 0) {
        violation = "served path missing during a swap";
        break;
      }
      std::set<std::string> seen;
      for (int f = 0; f < kFiles; ++f) {
        std::string rel = "d" + std::to_string(f % 3) + "/f" + std::to_string(f);
        int fd = ::openat(dir, rel.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          violation = "missing file " + rel;
          break;
        }
        std::string content;
        char buf[8192];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) content.append(buf, static_cast<size_t>(n));
        ::close(fd);
        std::string rev = content.substr(0, content.find('.'));
        size_t expected = rev.size() + 1000 + static_cast<size_t>(std::stoi(rev)) * 37;
        if (content.size() != expected) violation = "partial file " + rel;
        seen.insert(rev);
      }
      ::close(dir);
      if (seen.size() > 1)
        violation = "one pass saw revisions " + *seen.begin() + " and " + *seen.rbegin();
      passes++;
    }
  });
  for (int n = 1; n <= 12 && violation.empty(); ++n) {
    write_revision(n);
    Publish();
    ProcessResult r = Once();
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  done = true;
  reader.join();
  EXPECT_EQ(violation, "");
  EXPECT_GT(passes.load(), 12);
  EXPECT_EQ(ReadFile(Served() + "/d0/f0").substr(0, 2), "12");
}

TEST_F(AgentTest, SigkillMidDownloadThenTheNextRunResumes) {
  std::string weights = RandomBytes(48 << 20, 3);
  WriteFile(model_ + "/config.json", "v1");
  std::string rev1 = Publish();
  // 4 connections of 2 MB/s each: 4 MiB chunks complete in waves two
  // seconds apart.
  std::string url = StartNginx(/*limit_rate=*/"2m");
  ASSERT_FALSE(url.empty());
  WriteConfig({url}, "connections_per_file = 4\n");
  ASSERT_EQ(Once().exit_code, 0);
  WriteFile(model_ + "/weights.bin", weights);
  WriteFile(model_ + "/config.json", "v2");
  std::string rev2 = Publish();
  {
    BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
    ASSERT_TRUE(WaitFor([&] { return CompletedChunkOffsets(weights).size() >= 2; },
                        std::chrono::seconds(60)))
        << agent.Stderr();
    agent.Signal(SIGKILL);
    EXPECT_EQ(agent.Wait(), -SIGKILL);
  }
  // The served tree is exactly the old revision, with no stray files.
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "v1");
  EXPECT_FALSE(PathExists(Served() + "/weights.bin"));
  const std::vector<uint64_t> kept = CompletedChunkOffsets(weights);
  ASSERT_GE(kept.size(), 2u);
  ASSERT_TRUE(nginx_->WaitForAccessLog(1));
  const size_t before = nginx_->ReadAccessLog().size();

  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming download"), std::string::npos) << r.err;
  EXPECT_EQ(ServedRevision(), rev2);
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  // From nginx's log: no chunk the first run completed was asked for again,
  // and everything sent adds up to the file plus at most the chunks that
  // were in flight when the agent was killed.
  std::vector<AccessLogEntry> log = nginx_->ReadAccessLog();
  uint64_t sent = 0;
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].uri != ObjectUri(weights)) continue;
    sent += log[i].bytes_sent;
    if (i < before) continue;
    for (uint64_t offset : kept) {
      EXPECT_NE(log[i].range.rfind("bytes=" + std::to_string(offset) + "-", 0), 0u)
          << "chunk at " << offset << " was fetched again: " << log[i].range;
    }
  }
  EXPECT_LT(sent, weights.size() + (4u << 22)) << "more than the file and the chunks in flight";
  // The killed run is on record as interrupted.
  ProcessResult st_out = Status({"--json", kRepo});
  EXPECT_NE(st_out.out.find("\"outcome\":\"interrupted\""), std::string::npos) << st_out.out;
}

TEST_F(AgentTest, ServerDyingMidBodyFailsTheRunAndAnotherServerResumesIt) {
  std::string weights = RandomBytes(40 << 20, 8);
  WriteFile(model_ + "/weights.bin", weights);
  Publish();
  std::string url = StartNginx("2m");
  ASSERT_FALSE(url.empty());
  WriteConfig({url}, "retry_attempts = 2\nconnections_per_file = 4\n");
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  ASSERT_TRUE(
      WaitFor([&] { return !CompletedChunkOffsets(weights).empty(); }, std::chrono::seconds(60)))
      << agent.Stderr();
  nginx_->Kill();  // bodies stop half-way, then nothing answers
  EXPECT_EQ(agent.Wait(), 1);
  std::string err = agent.Stderr();
  EXPECT_NE(err.find("weights.bin"), std::string::npos) << err;
  EXPECT_TRUE(err.find("connection closed after") != std::string::npos ||
              err.find("reset") != std::string::npos || err.find("refused") != std::string::npos)
      << err;
  EXPECT_FALSE(PathExists(Served()));
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.out.find("FAILING"), std::string::npos) << st.out;
  // The built-in server takes over; the run continues from the chunks on disk.
  const std::vector<uint64_t> kept = CompletedChunkOffsets(weights);
  ASSERT_FALSE(kept.empty());
  WriteConfig({StartBuiltinServer()});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming download"), std::string::npos) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  std::string log = ReadFile(tmp_.Sub("serve-access.log"));
  EXPECT_NE(log.find("bytes="), std::string::npos) << log;
  for (uint64_t offset : kept) {
    EXPECT_EQ(log.find("bytes=" + std::to_string(offset) + "-"), std::string::npos)
        << "the completed chunk at " << offset << " was fetched again: " << log;
  }
}

TEST_F(AgentTest, StatusWorksForAnotherUserAfterACleanRun) {
  // Issue 11 finding 6: the run used to delete -wal and -shm, after which a
  // read-only open needs to write them and fails for a non-root user.
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run status as the user nobody";
  if (::access("/usr/sbin/runuser", X_OK) != 0) GTEST_SKIP() << "/usr/sbin/runuser is missing";
  WriteFile(model_ + "/a.txt", "a");
  const std::string rev = Publish();
  WriteConfig({"file://" + pub_});
  ASSERT_EQ(Once().exit_code, 0);
  ProcessResult r = RunProcess(
      {"/usr/sbin/runuser", "-u", "nobody", "--", AgentBinary(), "status", "--config", config_});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("active revision: " + rev), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.err.find("readonly"), std::string::npos) << r.err;
}

TEST_F(AgentTest, SecondAgentSeesTheLockAndChangesNothing) {
  WriteFile(model_ + "/weights.bin", RandomBytes(24 << 20, 4));
  Publish();
  std::string url = StartNginx("4m");
  ASSERT_FALSE(url.empty());
  WriteConfig({url});
  BackgroundProcess first({AgentBinary(), "--once", "--config", config_});
  ASSERT_TRUE(WaitFor([&] { return ReadFile(state_ + "/lock").size() > 0; })) << first.Stderr();
  ProcessResult second = Once();
  EXPECT_EQ(second.exit_code, 75) << second.err;
  EXPECT_NE(second.err.find("another sync-agent run (pid " + std::to_string(first.pid()) + ")"),
            std::string::npos)
      << second.err;
  EXPECT_EQ(first.Wait(), 0) << first.Stderr();
  EXPECT_EQ(DiffTrees(model_, Served()), "");
}

TEST_F(AgentTest, SigtermStopsATransferCleanly) {
  WriteFile(model_ + "/weights.bin", RandomBytes(32 << 20, 5));
  Publish();
  std::string url = StartNginx("4m");
  ASSERT_FALSE(url.empty());
  WriteConfig({url});
  BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
  ASSERT_TRUE(WaitFor([&] {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state_ + "/partial", ec)) {
      if (e.file_size(ec) > (1 << 20)) return true;
    }
    return false;
  }));
  agent.Signal(SIGTERM);
  int code = agent.Wait();
  EXPECT_EQ(code, 1) << agent.Stderr();
  EXPECT_NE(agent.Stderr().find("SIGTERM"), std::string::npos);
  EXPECT_FALSE(PathExists(Served()));
  ProcessResult st = Status({"--json", kRepo});
  EXPECT_NE(st.out.find("\"outcome\":\"interrupted\""), std::string::npos) << st.out;
}

// Each malformed manifest of the corpus, served with a matching pointer, is
// refused with its own message and leaves the served revision alone.
TEST_F(AgentTest, MalformedManifestsAreRefusedAndTheServedTreeStays) {
  WriteFile(model_ + "/a.txt", "good");
  std::string good = Publish();
  std::string url = StartBuiltinServer();
  WriteConfig({url});
  ASSERT_EQ(Once().exit_code, 0);
  std::string corpus = std::string(SA_SOURCE_DIR) + "/tests/manifest/corpus";
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    if (entry.path().extension() != ".json") continue;
    std::string name = entry.path().stem().string();
    std::string expect = ReadFile(corpus + "/" + name + ".expect");
    expect.pop_back();
    std::string text = ReadFile(entry.path().string());
    std::string rev = "bad-" + std::to_string(checked);
    for (char& c : rev) {
      if (c == '_') c = '-';
    }
    WriteFile(pub_ + "/" + kRepo + "/revisions/" + rev + ".json", text);
    WriteFile(pub_ + "/" + kRepo + "/latest",
              "{\"format\": 1, \"repo\": \"" + std::string(kRepo) + "\", \"revision\": \"" + rev +
                  "\", \"manifest\": \"revisions/" + rev + ".json\", \"manifest_sha256\": \"" +
                  Sha256Hex(text) + "\"}");
    ProcessResult r = Once();
    EXPECT_EQ(r.exit_code, 1) << name;
    // Log fields quote their values, so quotes inside the message are escaped.
    std::string escaped;
    for (char c : expect) {
      if (c == '"' || c == '\\') escaped.push_back('\\');
      escaped.push_back(c);
    }
    EXPECT_NE(r.err.find(escaped), std::string::npos) << name << ": " << r.err;
    EXPECT_EQ(ServedRevision(), good) << name;
    EXPECT_EQ(ReadFile(Served() + "/a.txt"), "good") << name;
    ++checked;
  }
  EXPECT_GE(checked, 30);
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.out.find("FAILING"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("active revision: " + good), std::string::npos) << st.out;
}

TEST_F(AgentTest, MissingObjectWrongBytesAndUnreachableSourceSayWhatWentWrong) {
  WriteFile(model_ + "/a.txt", "content");
  Publish();
  std::string url = StartNginx();
  ASSERT_FALSE(url.empty());
  WriteConfig({url});
  std::string object = pub_ + ObjectUri("content");
  ASSERT_EQ(::rename(object.c_str(), (object + ".away").c_str()), 0);
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("HTTP 404"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("a.txt"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(Served()));
  ASSERT_EQ(::rename((object + ".away").c_str(), object.c_str()), 0);
  ASSERT_EQ(Once().exit_code, 0);

  // Wrong bytes of the right size: the hash check refuses them.
  WriteFile(model_ + "/a.txt", "CONTENT");
  std::string rev2 = Publish();
  std::string object2 = pub_ + ObjectUri("CONTENT");
  ::chmod(object2.c_str(), 0644);
  WriteFile(object2, "c0ntent");
  r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the source serves wrong bytes"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(Served() + "/a.txt"), "content");
  EXPECT_FALSE(PathExists(PartialPath("CONTENT"))) << "wrong bytes must not be kept";
  WriteFile(object2, "CONTENT");
  ASSERT_EQ(Once().exit_code, 0);
  EXPECT_EQ(ReadFile(Served() + "/a.txt"), "CONTENT");
  EXPECT_EQ(ServedRevision(), rev2);

  int dead_port = FreeLoopbackPort();
  WriteConfig({"http://127.0.0.1:" + std::to_string(dead_port)});
  r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("127.0.0.1:" + std::to_string(dead_port)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(Served() + "/a.txt"), "CONTENT");
}

class TmpfsTest : public AgentFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
    node_ = tmp_.Sub("node");
    MakeDirs(node_);
    if (::mount("tmpfs", node_.c_str(), "tmpfs", 0, "size=96m,mode=0755") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
    }
    mounted_ = true;
    state_ = node_ + "/state";
    mirror_ = node_ + "/mirror";
  }
  void TearDown() override {
    if (mounted_) ::umount2(node_.c_str(), MNT_DETACH);
  }
  std::string node_;
  bool mounted_ = false;
};

TEST_F(TmpfsTest, DiskFullMidFileFailsCleanlyAndResumesOnceThereIsSpace) {
  WriteFile(model_ + "/config.json", "v1");
  std::string rev1 = Publish();
  // 4 connections of 2 MB/s: chunks complete in waves two seconds apart.
  std::string url = StartNginx("2m");
  ASSERT_FALSE(url.empty());
  WriteConfig({url}, "connections_per_file = 4\n");
  ASSERT_EQ(Once().exit_code, 0);
  std::string weights = RandomBytes(56 << 20, 6);
  WriteFile(model_ + "/weights.bin", weights);
  WriteFile(model_ + "/config.json", "v2");
  Publish();
  std::string filler = node_ + "/filler";
  {
    BackgroundProcess agent({AgentBinary(), "--once", "--config", config_});
    ASSERT_TRUE(WaitFor([&] { return CompletedChunkOffsets(weights).size() >= 2; },
                        std::chrono::seconds(60)))
        << agent.Stderr();
    // Fill the disk behind the agent's back, in the middle of the file.
    int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    std::string chunk(1 << 20, 'x');
    while (::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    ::close(fd);
    EXPECT_EQ(agent.Wait(), 1);
    std::string err = agent.Stderr();
    EXPECT_NE(err.find("No space left on device"), std::string::npos) << err;
    EXPECT_NE(err.find("weights.bin"), std::string::npos) << err;
  }
  EXPECT_EQ(ServedRevision(), rev1);
  EXPECT_EQ(ReadFile(Served() + "/config.json"), "v1");
  EXPECT_FALSE(PathExists(Served() + "/weights.bin"));
  auto staging = std::filesystem::path(mirror_) / ".sync-agent" / "staging" / "acme" / "llm-7b";
  EXPECT_TRUE(!std::filesystem::exists(staging) || std::filesystem::is_empty(staging));
  ProcessResult st = Status();
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.out.find("No space left"), std::string::npos) << st.out;

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming download"), std::string::npos) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
}

TEST_F(TmpfsTest, NotEnoughSpaceIsRefusedBeforeDownloading) {
  WriteFile(model_ + "/weights.bin", RandomBytes(120 << 20, 7));
  Publish();
  WriteConfig({"file://" + pub_});
  ProcessResult r = Once();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("are free; free space or move state_dir"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(Served()));
}

}  // namespace
}  // namespace sync_agent::testing
