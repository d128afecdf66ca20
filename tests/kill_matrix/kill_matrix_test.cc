// The kill matrix (issue 11, "Proof under faults"): the real sync-agent
// binary syncs a repository from a real nginx (throttled, so a transfer
// lasts about SA_KILL_SECONDS) and is killed with SIGKILL at many points of
// one sync: a large file plus small changes (a changed config, a new file, a
// removed file), from its start through the transfer to the swap, record and
// collect stages at the end. After each kill:
//
//   1. the served tree is exactly the old or the new revision (every byte);
//   2. `status` tells the truth: the revision it names as active is the one
//      the symlink serves, the database revision it reports is the
//      database's, and it says the killed run did not finish;
//   3. the next run completes and serves exactly the new revision, leaving
//      no partial file, staging tree, swap link or old tree behind;
//   4. the bytes fetched again, over an uninterrupted run from the same
//      state, stay within 10% of the large file.
//
// Every point starts from a snapshot of the node, not from what the previous
// point left: each kill and its resume are then one experiment whose refetch
// can be attributed to that kill, and a broken point cannot hide behind (or
// be caused by) another. Between a kill and its resume nothing is reset:
// what the killed run left (partial chunks, a half-built staging tree, a
// swapped link the database does not know) is exactly what the resume must
// cope with. Kills during a resume are covered by the end-stage points that
// start from a snapshot holding half of the large file's chunks.
//
// Kills in the transfer come from outside, when the source has sent k% of
// the large file (counted by a proxy in front of nginx, spread over 0-95%);
// the others use the engine's test-only kill points
// (SYNC_AGENT_TEST_KILL_AT, common/base/kill_point.h), because "between the
// rename and the database update" cannot be hit from outside on demand.
// Only the runs killed from outside are throttled; resumes and runs with a
// kill point go at full speed (what a run fetches does not depend on it).
//
// The refetch bound: a killed run loses at most the chunks in flight,
// connections_per_file x the chunk size (1/256 of the file, at least 4 MiB;
// see ChunkBytesFor), so the matrix uses 2 connections for its 96 MiB file
// (8.3%). With the default 16 connections the bound holds from about
// 640 MiB on; below that a kill can cost up to 16 x 4 MiB.
//
// Scale: SA_KILL_POINTS (default 100), SA_KILL_FILE_MB (96),
// SA_KILL_CONNECTIONS (connections_per_file, 2), SA_KILL_SECONDS (1).
// scripts/kill-matrix runs it larger. The figures are printed at the end.
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/base/time_util.h"
#include "common/transfer/chunked_download.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

namespace fs = std::filesystem;
using Tree = std::map<std::string, std::string>;

// The matrix writes, and the agent fsyncs, some 20 GB over its runs. A
// SIGKILL leaves the page cache intact, so a RAM file system hides nothing
// the matrix tests and keeps a shared disk out of its run time: the
// temporary directories go to /dev/shm unless TMPDIR or SA_KILL_TMPDIR says
// otherwise. (Runs before the fixture creates its directories.)
const bool kTmpdirChosen = [] {
  if (const char* d = std::getenv("SA_KILL_TMPDIR")) return ::setenv("TMPDIR", d, 1) == 0;
  if (std::getenv("TMPDIR") == nullptr && ::access("/dev/shm", W_OK) == 0) {
    return ::setenv("TMPDIR", "/dev/shm", 1) == 0;
  }
  return true;
}();

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

// A copy of a node's directory that shares the immutable files: read-only
// regular files (objects, the trees' hard links to them) are hard-linked,
// everything the agent may change in place (the database, partial files,
// the ranges records) is copied. Symlinks are recreated as they are.
void CloneTree(const std::string& from, const std::string& to) {
  fs::remove_all(to);
  fs::create_directories(to);
  for (auto it = fs::recursive_directory_iterator(from); it != fs::recursive_directory_iterator();
       ++it) {
    fs::path dest = fs::path(to) / it->path().lexically_relative(from);
    if (it->is_symlink()) {
      fs::copy_symlink(it->path(), dest);
    } else if (it->is_directory()) {
      fs::create_directory(dest);
      fs::permissions(dest, it->status().permissions());
    } else {
      const fs::perms p = it->status().permissions();
      if ((p & (fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write)) ==
          fs::perms::none) {
        fs::create_hard_link(it->path(), dest);
      } else {
        fs::copy_file(it->path(), dest);
        fs::permissions(dest, p);
      }
    }
  }
}

// Whether the tree below root (a symlink is followed) holds exactly the
// expected regular files, byte for byte, and nothing else. Files are mapped,
// not read, so that comparing a 100 MiB tree after every kill costs no copy.
bool TreeIs(const std::string& root, const Tree& expected, std::string* why) {
  auto fail = [why](std::string reason) {
    *why = std::move(reason);
    return false;
  };
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return fail(root + " does not resolve");
  size_t seen = 0;
  for (auto it = fs::recursive_directory_iterator(base, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory() && !it->is_symlink()) continue;
    const std::string rel = it->path().lexically_relative(base).string();
    auto want = expected.find(rel);
    if (want == expected.end() || it->is_symlink() || !it->is_regular_file()) {
      return fail("unexpected " + rel);
    }
    ++seen;
    const std::string& bytes = want->second;
    int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || ::fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != bytes.size()) {
      if (fd >= 0) ::close(fd);
      return fail("size differs: " + rel);
    }
    bool same = true;
    if (!bytes.empty()) {
      void* m = ::mmap(nullptr, bytes.size(), PROT_READ, MAP_SHARED, fd, 0);
      same = m != MAP_FAILED && std::memcmp(m, bytes.data(), bytes.size()) == 0;
      if (m != MAP_FAILED) ::munmap(m, bytes.size());
    }
    ::close(fd);
    if (!same) return fail("content differs: " + rel);
  }
  if (ec) return fail("cannot walk " + root + ": " + ec.message());
  if (seen != expected.size()) return fail("files missing");
  return true;
}

// Entries of a directory, "" if it does not exist.
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

Poco::JSON::Object::Ptr RepoJson(const std::string& text) {
  try {
    Poco::JSON::Parser parser;
    auto root = parser.parse(text).extract<Poco::JSON::Object::Ptr>();
    return root->getArray("repos")->getObject(0);
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::string JsonString(const Poco::JSON::Object::Ptr& o, const std::string& key) {
  if (o.isNull() || !o->has(key) || o->isNull(key)) return "";
  return o->getValue<std::string>(key);
}

enum class Start { kOld, kHalf, kDownloaded };

struct Point {
  std::string stage;  // for the figures: start, transfer, assemble, swap, record, collect
  std::string name;   // what the point is
  Start start = Start::kOld;
  std::string kill_at;   // SYNC_AGENT_TEST_KILL_AT, or "" for a kill from outside
  double fraction = -1;  // from outside: once the source sent this share of the file
};

struct Figures {
  std::map<std::string, int> per_stage;
  int old_served = 0, new_served = 0, mixed = 0;
  int status_true = 0, db_behind = 0;
  int resumed = 0;
  std::vector<double> refetch;           // share of the large file, every point
  std::vector<double> transfer_refetch;  // the points killed in the transfer
  double first_kill_s = 1e9, last_kill_s = 0;
};

class KillMatrixTest : public AgentFixture {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "nginx is not installed (apt-get install nginx)";
    if (!PathExists("/usr/bin/sqlite3")) {
      GTEST_SKIP() << "the sqlite3 tool is needed to read the database (apt-get install sqlite3)";
    }
  }

  // The node's state and mirror, saved and put back.
  void Save(const std::string& name) {
    CloneTree(state_, tmp_.Sub("snap-" + name + "/state"));
    CloneTree(mirror_, tmp_.Sub("snap-" + name + "/mirror"));
  }
  void Restore(const std::string& name) {
    CloneTree(tmp_.Sub("snap-" + name + "/state"), state_);
    CloneTree(tmp_.Sub("snap-" + name + "/mirror"), mirror_);
  }
  static std::string SnapshotName(Start s) {
    return s == Start::kOld ? "old" : s == Start::kHalf ? "half" : "downloaded";
  }

  std::unique_ptr<BackgroundProcess> StartAgent(const std::string& kill_at) {
    std::map<std::string, std::string> env;
    if (!kill_at.empty()) env["SYNC_AGENT_TEST_KILL_AT"] = kill_at;
    return std::make_unique<BackgroundProcess>(
        std::vector<std::string>{AgentBinary(), "--once", "--config", config_}, env);
  }

  // Kills a run from outside once the source has sent `bytes` more.
  int KillAfterBytes(uint64_t bytes, double* after_s) {
    const uint64_t base = proxy_->bytes_sent();
    auto start = std::chrono::steady_clock::now();
    auto agent = StartAgent("");
    WaitFor([&] { return proxy_->bytes_sent() - base >= bytes || !agent->Running(); },
            std::chrono::seconds(120));
    agent->Signal(SIGKILL);
    *after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return agent->Wait();
  }

  // What the database holds: its active revision and the outcome of the
  // repository's last run ("running" if the killed run had begun one).
  std::pair<std::string, std::string> DatabaseTruth() {
    const std::string repo_id = "(SELECT id FROM repos WHERE name = '" + std::string(kRepo) + "')";
    std::string out = Sql(
        "SELECT (SELECT revision FROM revisions WHERE state = 'active' AND repo_id = " + repo_id +
        ") || '|' || (SELECT outcome FROM sync_runs WHERE repo_id = " + repo_id +
        " ORDER BY id DESC LIMIT 1)");
    size_t bar = out.find('|');
    if (bar == std::string::npos) return {"", ""};
    return {out.substr(0, bar), out.substr(bar + 1)};
  }

  // A run to completion, at full speed.
  ProcessResult Resume() {
    WriteFile(unlimited_flag_, "");
    ProcessResult r = Once();
    ::unlink(unlimited_flag_.c_str());
    return r;
  }

  // Bytes the source sends for an uninterrupted run from a snapshot.
  uint64_t Baseline(Start s) {
    Restore(SnapshotName(s));
    uint64_t before = proxy_->bytes_sent();
    ProcessResult r = Resume();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ServedRevision(), rev2_);
    return proxy_->bytes_sent() - before;
  }

  void RunPoint(const Point& p, Figures* fig);

  uint64_t file_size_ = 0;
  std::unique_ptr<FaultProxy> proxy_;
  std::string rev1_, rev2_;
  Tree old_tree_, new_tree_;
  std::map<Start, uint64_t> baseline_;
  std::string unlimited_flag_;  // while it exists, nginx does not throttle
};

void KillMatrixTest::RunPoint(const Point& p, Figures* fig) {
  SCOPED_TRACE("kill point " + p.name);
  Restore(SnapshotName(p.start));
  const uint64_t before = proxy_->bytes_sent();
  int code;
  double after_s = 0;
  std::string err;
  if (p.kill_at.empty()) {
    code = KillAfterBytes(static_cast<uint64_t>(p.fraction * static_cast<double>(file_size_)),
                          &after_s);
  } else {
    // A kill point needs no throttle to be hit.
    WriteFile(unlimited_flag_, "");
    auto start = std::chrono::steady_clock::now();
    auto agent = StartAgent(p.kill_at);
    code = agent->Wait();
    ::unlink(unlimited_flag_.c_str());
    after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    err = agent->Stderr();
  }
  EXPECT_EQ(code, -SIGKILL) << "the run was not killed at " << p.name << " (it ended first)\n"
                            << err;
  fig->per_stage[p.stage]++;
  fig->first_kill_s = std::min(fig->first_kill_s, after_s);
  fig->last_kill_s = std::max(fig->last_kill_s, after_s);

  // 1. Exactly the old or the new revision is served.
  const std::string served = ServedRevision();
  std::string not_old, not_new;
  if (TreeIs(Served(), old_tree_, &not_old)) {
    fig->old_served++;
    EXPECT_EQ(served, rev1_);
  } else if (TreeIs(Served(), new_tree_, &not_new)) {
    fig->new_served++;
    EXPECT_EQ(served, rev2_);
  } else {
    fig->mixed++;
    ADD_FAILURE() << "after the kill the served tree (" << served
                  << ") is neither the old revision (" << not_old << ") nor the new one ("
                  << not_new << ")";
  }

  // 2. status names what is served, reports the database as it is, and says
  // whether the last recorded run finished.
  const auto [db_active, last_outcome] = DatabaseTruth();
  ProcessResult st = Status({"--json"});
  auto repo = RepoJson(st.out);
  ASSERT_FALSE(repo.isNull()) << st.out;
  bool truthful = true;
  auto check = [&](bool ok, const std::string& what) {
    EXPECT_TRUE(ok) << what << "\n" << st.out;
    truthful = truthful && ok;
  };
  check(JsonString(repo, "active_revision") == served, "status names another active revision");
  check(JsonString(repo, "database_revision") == db_active,
        "status misreports the database's revision " + db_active);
  check(repo->getValue<bool>("database_behind") == (db_active != served),
        "database_behind is wrong");
  if (last_outcome == "running") {
    check(st.exit_code == 1 && repo->getValue<bool>("failing") &&
              JsonString(repo, "problem").find("did not finish") != std::string::npos,
          "status does not say the killed run did not finish");
  } else {
    // Killed before it recorded a run: the last recorded run is the old sync.
    check(last_outcome == "updated" && st.exit_code == 0 && !repo->getValue<bool>("failing"),
          "status reports a failure no run recorded (last outcome " + last_outcome + ")");
  }
  if (truthful) fig->status_true++;
  if (db_active != served) fig->db_behind++;

  // 3. The next run completes and serves exactly the new revision.
  ProcessResult r = Resume();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ServedRevision(), rev2_);
  std::string why;
  const bool exact = TreeIs(Served(), new_tree_, &why);
  EXPECT_TRUE(exact) << "after the resume the served tree is not exactly the new revision: " << why;
  const bool clean_tree = Entries(mirror_ + "/acme") == std::vector<std::string>{"llm-7b"};
  EXPECT_TRUE(clean_tree) << "left in the mirror: " << Join(Entries(mirror_ + "/acme"));
  EXPECT_EQ(Join(Entries(mirror_ + "/.sync-agent/trees/acme/llm-7b")), rev2_)
      << "old trees left (keep_revisions = 1)";
  EXPECT_EQ(Join(Entries(mirror_ + "/.sync-agent/staging/acme/llm-7b")), "");
  EXPECT_EQ(Join(Entries(state_ + "/partial")), "") << "partial downloads left";
  ProcessResult after = Status({"--json"});
  auto after_repo = RepoJson(after.out);
  EXPECT_EQ(after.exit_code, 0) << after.out;
  EXPECT_EQ(JsonString(after_repo, "active_revision"), rev2_) << after.out;
  EXPECT_EQ(JsonString(after_repo, "database_revision"), rev2_) << after.out;
  if (r.exit_code == 0 && exact && clean_tree) fig->resumed++;

  // 4. What the kill cost: bytes over an uninterrupted run from the same state.
  const uint64_t sent = proxy_->bytes_sent() - before;
  const uint64_t base = baseline_[p.start];
  const double refetch =
      sent > base ? static_cast<double>(sent - base) / static_cast<double>(file_size_) : 0.0;
  fig->refetch.push_back(refetch);
  if (p.stage == "transfer") fig->transfer_refetch.push_back(refetch);
  EXPECT_LE(refetch, 0.10) << "the kill at " << p.name << " cost " << FormatBytes(sent - base)
                           << " fetched again, over 10% of the " << FormatBytes(file_size_)
                           << " file";
}

TEST_F(KillMatrixTest, EveryKillLeavesOldOrNewServedStatusTruthfulAndResumesCheaply) {
  const uint64_t points = EnvNumber("SA_KILL_POINTS", 100);
  file_size_ = EnvNumber("SA_KILL_FILE_MB", 96) << 20;
  const uint64_t connections = std::max<uint64_t>(1, EnvNumber("SA_KILL_CONNECTIONS", 2));
  const uint64_t seconds = std::max<uint64_t>(1, EnvNumber("SA_KILL_SECONDS", 1));
  // nginx's per-connection rate, so that the large file takes `seconds`.
  const uint64_t rate = std::max<uint64_t>(1 << 20, file_size_ / connections / seconds);
  NginxServer::Options o;
  o.limit_rate = std::to_string(rate / 1024) + "k";
  // Only the runs to be killed are throttled: a resume runs at full speed
  // (what it fetches does not depend on its speed).
  unlimited_flag_ = tmp_.Sub("unlimited");
  o.unlimited_while_exists = unlimited_flag_;
  std::string url = StartNginx(o);
  ASSERT_FALSE(url.empty());
  proxy_ = std::make_unique<FaultProxy>(nginx_->port());

  // The old revision. Publishing neither deltas nor signatures makes the
  // node fetch the large file whole, the longest transfer and the one that
  // resumes by chunks (a hub that publishes none looks the same).
  const std::vector<std::string> no_deltas = {"--delta-depth", "0", "--signature-min-size",
                                              std::to_string(file_size_ * 2)};
  std::string weights = RandomBytes(file_size_, 11);
  WriteFile(model_ + "/weights.bin", weights);
  WriteFile(model_ + "/config.json", "{\"layers\": 32}");
  WriteFile(model_ + "/tokenizer.json", "{\"vocab\": 32000}");
  WriteFile(model_ + "/obsolete.txt", "removed in the new revision");
  WriteFile(model_ + "/docs/README.md", "# model\n");
  rev1_ = Publish(no_deltas);
  old_tree_ = ReadTree(model_);
  WriteConfig({proxy_->url()},
              "connections_per_file = " + std::to_string(connections) + "\nkeep_revisions = 1\n");
  ProcessResult r = Resume();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(ServedRevision(), rev1_);
  Save("old");

  // The new revision: the large file changed in places, a changed config, a
  // new small file, a removed file.
  for (int i = 0; i < 16; ++i) {
    size_t at = static_cast<size_t>(i) * (file_size_ / 16) + 4096;
    weights.replace(at, 64 << 10, RandomBytes(64 << 10, 100 + static_cast<uint64_t>(i)));
  }
  WriteFile(model_ + "/weights.bin", weights);
  weights.clear();
  weights.shrink_to_fit();
  WriteFile(model_ + "/config.json", "{\"layers\": 33}");
  WriteFile(model_ + "/added.txt", "new in the new revision");
  ASSERT_EQ(::unlink((model_ + "/obsolete.txt").c_str()), 0);
  rev2_ = Publish(no_deltas);
  ASSERT_NE(rev1_, rev2_);
  new_tree_ = ReadTree(model_);

  // The other starting states: half of the chunks on disk (a killed run),
  // and everything downloaded, killed just before the end stages.
  double ignored;
  ASSERT_EQ(KillAfterBytes(file_size_ / 2, &ignored), -SIGKILL);
  ASSERT_EQ(ServedRevision(), rev1_);
  Save("half");
  Restore("old");
  WriteFile(unlimited_flag_, "");
  ProcessResult downloaded =
      RunAgent({"--once", "--config", config_}, {{"SYNC_AGENT_TEST_KILL_AT", "transferred"}});
  ::unlink(unlimited_flag_.c_str());
  ASSERT_EQ(downloaded.exit_code, -SIGKILL) << downloaded.err;
  Save("downloaded");
  for (Start s : {Start::kOld, Start::kHalf, Start::kDownloaded}) {
    baseline_[s] = Baseline(s);
    ASSERT_FALSE(HasFailure()) << "an uninterrupted run from " << SnapshotName(s) << " failed";
  }
  ASSERT_GE(baseline_[Start::kOld], file_size_);

  // The points.
  std::vector<Point> plan;
  plan.push_back({"start", "at once", Start::kOld, "", 0.0});
  for (const char* at : {"polled", "planned"}) plan.push_back({"start", at, Start::kOld, at});
  for (const char* at : {"verified", "stored"}) plan.push_back({"transfer", at, Start::kOld, at});
  // The end stages, from a finished download and during a resume.
  const std::vector<std::pair<const char*, const char*>> end_points = {
      {"assemble", "hub-ids"},         {"assemble", "assemble-file:1"},
      {"assemble", "assemble-file:3"}, {"assemble", "assembled"},
      {"swap", "swap-link"},           {"swap", "swapped"},
      {"swap", "swap-done"},           {"record", "activated"},
      {"record", "poll-state"},        {"collect", "collect-tree"},
      {"collect", "collect-object:1"}, {"collect", "collect-object:2"},
      {"collect", "collect-object:3"}, {"collect", "collected"},
      {"record", "run-files"}};
  for (Start s : {Start::kDownloaded, Start::kHalf}) {
    for (const auto& [stage, at] : end_points) {
      plan.push_back({stage, std::string(at) + (s == Start::kHalf ? " (resuming)" : ""), s, at});
    }
  }
  // The rest spread over the transfer, by the share of the file sent.
  const size_t fixed = plan.size();
  const size_t transfer = points > fixed + 10 ? points - fixed : 10;
  for (size_t i = 0; i < transfer; ++i) {
    double f = 0.95 * static_cast<double>(i + 1) / static_cast<double>(transfer);
    char name[32];
    std::snprintf(name, sizeof name, "%.1f%% sent", 100 * f);
    plan.push_back({"transfer", name, Start::kOld, "", f});
  }

  Figures fig;
  for (const Point& p : plan) {
    RunPoint(p, &fig);
    if (HasFatalFailure()) break;
  }

  auto worst_and_median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? std::pair<double, double>{0, 0}
                     : std::pair<double, double>{v.back(), v[v.size() / 2]};
  };
  const auto [worst, median] = worst_and_median(fig.refetch);
  const auto [transfer_worst, transfer_median] = worst_and_median(fig.transfer_refetch);
  std::string stages;
  for (const char* s : {"start", "transfer", "assemble", "swap", "record", "collect"}) {
    stages += std::string(stages.empty() ? "" : ", ") + s + " " + std::to_string(fig.per_stage[s]);
  }
  const uint64_t chunk = ChunkBytesFor(file_size_);
  std::printf(
      "kill matrix: %zu SIGKILLs of sync-agent --once, a %s file changed in places plus small "
      "changes, %llu connections, chunks of %s (at most %.1f%% in flight)\n"
      "  by stage: %s\n"
      "  kills from %.2f s to %.2f s after the start\n"
      "  after the kill: old revision served %d, new %d, neither %d\n"
      "  status told the truth %d of %zu (database behind the served link %d)\n"
      "  the next run completed exactly %d of %zu\n"
      "  refetch over an uninterrupted run from the same state, of the file: worst %.1f%%, "
      "median %.1f%%; of the %zu kills in the transfer: worst %.1f%%, median %.1f%%\n",
      plan.size(), FormatBytes(file_size_).c_str(), static_cast<unsigned long long>(connections),
      FormatBytes(chunk).c_str(),
      100.0 * static_cast<double>(connections * chunk) / static_cast<double>(file_size_),
      stages.c_str(), fig.first_kill_s, fig.last_kill_s, fig.old_served, fig.new_served, fig.mixed,
      fig.status_true, plan.size(), fig.db_behind, fig.resumed, plan.size(), 100 * worst,
      100 * median, fig.transfer_refetch.size(), 100 * transfer_worst, 100 * transfer_median);
  std::fflush(stdout);
  EXPECT_GE(plan.size(), std::min<uint64_t>(points, 100));
  EXPECT_EQ(fig.refetch.size(), plan.size()) << "a point stopped the matrix";
  EXPECT_GE(fig.per_stage["swap"] + fig.per_stage["record"] + fig.per_stage["collect"], 20);
  EXPECT_GT(fig.old_served, 0);
  EXPECT_GT(fig.new_served, 0);
  EXPECT_GT(fig.db_behind, 0) << "no kill fell between the swap and the database update";
}

}  // namespace
}  // namespace sync_agent::testing
