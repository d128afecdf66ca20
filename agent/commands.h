// The sync-agent commands. Each returns the process exit code:
//   0 success; 1 a repository failed or status is unhealthy;
//   2 bad usage or configuration; 75 another run holds the lock.
#pragma once

#include <string>
#include <vector>

namespace sync_agent {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitBusy = 75;  // EX_TEMPFAIL

int CmdPublish(const std::vector<std::string>& args);
int CmdKeygen(const std::vector<std::string>& args);
int CmdVerify(const std::vector<std::string>& args);
int CmdServe(const std::vector<std::string>& args);
int CmdOnce(const std::vector<std::string>& args);
int CmdRun(const std::vector<std::string>& args);
int CmdStatus(const std::vector<std::string>& args);
int CmdPin(const std::vector<std::string>& args);
int CmdUnpin(const std::vector<std::string>& args);
// Download statistics from nginx access logs (agent/stats.cc).
int CmdStats(const std::vector<std::string>& args);

}  // namespace sync_agent
