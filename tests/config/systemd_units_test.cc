// Checks the shipped systemd units (systemd/*) with systemd-analyze verify and
// asserts the settings that the README and the agent rely on.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using ::testing::HasSubstr;

constexpr const char* kSystemdAnalyze = "/usr/bin/systemd-analyze";
constexpr const char* kInstalledBinary = "/usr/bin/sync-agent";
const std::vector<std::string> kUnits = {"sync-agent.service",        "sync-agent.timer",
                                         "sync-agent-daemon.service", "sync-agent-hub.service",
                                         "sync-agent-verify.service", "sync-agent-verify.timer"};

std::string UnitSource(const std::string& name) {
  return std::string(SA_SOURCE_DIR) + "/systemd/" + name;
}

// "Key=value" lines of one unit, by "Section.Key"; repeated keys keep every value.
std::multimap<std::string, std::string> ReadUnit(const std::string& name) {
  std::multimap<std::string, std::string> out;
  std::istringstream in(testing::ReadFile(UnitSource(name)));
  std::string line, section;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    out.emplace(section + "." + line.substr(0, eq), line.substr(eq + 1));
  }
  return out;
}

std::string Get(const std::multimap<std::string, std::string>& unit, const std::string& key) {
  auto it = unit.find(key);
  return it == unit.end() ? "<unset>" : it->second;
}

// Copies the units into dir. verify insists that ExecStart's binary exists, and
// /usr/bin/sync-agent is not installed on a build machine, so it is
// replaced by the binary this build produced.
std::vector<std::string> CopyUnitsForVerify(const testing::TempDir& dir) {
  std::vector<std::string> paths;
  for (const std::string& name : kUnits) {
    std::string text = testing::ReadFile(UnitSource(name));
    EXPECT_FALSE(text.empty()) << "missing " << UnitSource(name);
    const std::string from = kInstalledBinary;
    for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + 1)) {
      text.replace(pos, from.size(), testing::AgentBinary());
    }
    std::string path = dir.Sub(name);
    testing::WriteFile(path, text);
    paths.push_back(path);
  }
  return paths;
}

testing::ProcessResult Verify(const std::vector<std::string>& paths) {
  std::vector<std::string> argv = {kSystemdAnalyze, "verify"};
  argv.insert(argv.end(), paths.begin(), paths.end());
  // Offline: no pager, no colours, no attempt to talk to a running manager.
  return testing::RunProcess(argv, {{"SYSTEMD_PAGER", ""}, {"SYSTEMD_COLORS", "0"}});
}

class SystemdUnitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kSystemdAnalyze, X_OK) != 0) {
      GTEST_SKIP() << kSystemdAnalyze << " is not installed (package systemd)";
    }
  }
};

TEST_F(SystemdUnitsTest, ShippedUnitsVerifyCleanly) {
  testing::TempDir dir;
  std::vector<std::string> paths = CopyUnitsForVerify(dir);
  ASSERT_TRUE(testing::PathExists(testing::AgentBinary())) << testing::AgentBinary();
  testing::ProcessResult r = Verify(paths);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
}

TEST_F(SystemdUnitsTest, VerifyCatchesABrokenUnit) {
  // Proves that the check above can fail: a misspelled key and a missing binary.
  testing::TempDir dir;
  std::string path = dir.Sub("sync-agent.service");
  testing::WriteFile(path,
                     "[Unit]\nDescription=broken\n[Service]\nType=oneshot\n"
                     "ExecStrat=/bin/true\nExecStart=/nonexistent/sync-agent\n");
  testing::ProcessResult r = Verify({path});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("ExecStrat"));
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/sync-agent"));
}

TEST(SystemdUnitsContentTest, OneshotAndDaemonRunTheInstalledBinary) {
  auto oneshot = ReadUnit("sync-agent.service");
  EXPECT_EQ(Get(oneshot, "Service.Type"), "oneshot");
  EXPECT_EQ(Get(oneshot, "Service.ExecStart"),
            "/usr/bin/sync-agent --once --config /etc/sync-agent/sync-agent.toml");

  auto daemon = ReadUnit("sync-agent-daemon.service");
  EXPECT_EQ(Get(daemon, "Service.Type"), "simple");
  EXPECT_EQ(Get(daemon, "Service.ExecStart"),
            "/usr/bin/sync-agent run --config /etc/sync-agent/sync-agent.toml");
  EXPECT_EQ(Get(daemon, "Service.ExecReload"), "/bin/kill -HUP $MAINPID");
  EXPECT_EQ(Get(daemon, "Service.Restart"), "on-failure");
  EXPECT_NE(Get(daemon, "Service.TimeoutStopSec"), "<unset>");
  EXPECT_EQ(Get(daemon, "Install.WantedBy"), "multi-user.target");
}

TEST(SystemdUnitsContentTest, HubServiceServesTheNodeBehindNginx) {
  auto hub = ReadUnit("sync-agent-hub.service");
  EXPECT_EQ(Get(hub, "Service.ExecStart"),
            "/usr/bin/sync-agent serve --config /etc/sync-agent/sync-agent.toml --listen "
            "127.0.0.1:8081 --x-accel-redirect /_sync_agent_files/");
  // What the shipped nginx example proxies to and redirects into.
  const std::string nginx =
      testing::ReadFile(std::string(SA_SOURCE_DIR) + "/scripts/nginx-hub.conf.example");
  EXPECT_THAT(nginx, HasSubstr("server 127.0.0.1:8081;"));
  EXPECT_THAT(nginx, HasSubstr("location /_sync_agent_files/ {"));
}

TEST(SystemdUnitsContentTest, TimerSchedulesTheOneshot) {
  auto timer = ReadUnit("sync-agent.timer");
  EXPECT_EQ(Get(timer, "Timer.Unit"), "sync-agent.service");
  EXPECT_EQ(Get(timer, "Timer.OnUnitActiveSec"), "5min");
  EXPECT_NE(Get(timer, "Timer.OnBootSec"), "<unset>");
  EXPECT_NE(Get(timer, "Timer.RandomizedDelaySec"), "<unset>");
  EXPECT_EQ(Get(timer, "Timer.Persistent"), "true");
  EXPECT_EQ(Get(timer, "Install.WantedBy"), "timers.target");
}

TEST(SystemdUnitsContentTest, VerifyTimerRepairsWeeklyAndFullyEveryMonth) {
  auto timer = ReadUnit("sync-agent-verify.timer");
  EXPECT_EQ(Get(timer, "Timer.Unit"), "sync-agent-verify.service");
  EXPECT_THAT(Get(timer, "Timer.OnCalendar"), HasSubstr("Sun "));
  EXPECT_EQ(Get(timer, "Timer.Persistent"), "true");
  EXPECT_EQ(Get(timer, "Install.WantedBy"), "timers.target");
  auto service = ReadUnit("sync-agent-verify.service");
  EXPECT_EQ(Get(service, "Service.Type"), "oneshot");
  EXPECT_EQ(Get(service, "Service.ExecStart"),
            "/usr/bin/sync-agent verify --repair --full-every 30d --config "
            "/etc/sync-agent/sync-agent.toml");
  EXPECT_EQ(Get(service, "Service.SuccessExitStatus"), "75");
}

TEST(SystemdUnitsContentTest, TimerModeAndDaemonModeConflict) {
  EXPECT_THAT(Get(ReadUnit("sync-agent.timer"), "Unit.Conflicts"),
              HasSubstr("sync-agent-daemon.service"));
  EXPECT_THAT(Get(ReadUnit("sync-agent.service"), "Unit.Conflicts"),
              HasSubstr("sync-agent-daemon.service"));
  std::string daemon_conflicts = Get(ReadUnit("sync-agent-daemon.service"), "Unit.Conflicts");
  EXPECT_THAT(daemon_conflicts, HasSubstr("sync-agent.timer"));
  EXPECT_THAT(daemon_conflicts, HasSubstr("sync-agent.service"));
}

TEST(SystemdUnitsContentTest, BothServicesAreHardenedAlike) {
  const std::map<std::string, std::string> required = {
      {"User", "sync-agent"},
      {"Group", "sync-agent"},
      {"StateDirectory", "sync-agent"},
      {"ReadWritePaths", "/srv/mirror"},
      {"UMask", "0022"},
      {"ProtectSystem", "strict"},
      {"ProtectHome", "yes"},
      {"PrivateTmp", "yes"},
      {"PrivateDevices", "yes"},
      {"NoNewPrivileges", "yes"},
      {"CapabilityBoundingSet", ""},
      {"ProtectKernelTunables", "yes"},
      {"ProtectKernelModules", "yes"},
      {"ProtectKernelLogs", "yes"},
      {"ProtectControlGroups", "yes"},
      {"ProtectClock", "yes"},
      {"ProtectHostname", "yes"},
      {"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
      {"RestrictNamespaces", "yes"},
      {"RestrictRealtime", "yes"},
      {"RestrictSUIDSGID", "yes"},
      {"LockPersonality", "yes"},
      {"MemoryDenyWriteExecute", "yes"},
      {"SystemCallArchitectures", "native"},
      {"SystemCallFilter", "@system-service"},
  };
  for (const char* name : {"sync-agent.service", "sync-agent-daemon.service",
                           "sync-agent-hub.service", "sync-agent-verify.service"}) {
    auto unit = ReadUnit(name);
    const bool reader = std::string(name) == "sync-agent-hub.service";
    for (const auto& [key, value] : required) {
      // The Hub API server only reads the mirror root.
      const std::string want = reader && key == "ReadWritePaths" ? "<unset>" : value;
      EXPECT_EQ(Get(unit, "Service." + key), want) << name << " " << key;
    }
    EXPECT_EQ(Get(unit, "Service.DynamicUser"), "<unset>") << name;
  }
}

}  // namespace
}  // namespace sync_agent
