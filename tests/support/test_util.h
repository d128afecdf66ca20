// Shared test helpers: temporary directories, free loopback ports, running
// the real sync-agent binary (or any program) and capturing its output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sync_agent::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
// world_readable makes it and its parents traversable for nginx's workers.
class TempDir {
 public:
  explicit TempDir(bool world_readable = false);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();
// True if something accepts TCP connections on 127.0.0.1:port right now.
bool AcceptsConnections(int port);

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644);
std::string ReadFile(const std::string& path);  // "" if missing
bool PathExists(const std::string& path);
void MakeDirs(const std::string& path);
// Deterministic pseudo-random bytes.
std::string RandomBytes(size_t n, uint64_t seed);

struct ProcessResult {
  int exit_code = -1;  // -signal if killed by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with argv, optional extra environment, and waits.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env = {},
                         const std::string& stdin_data = "");

// A child process running in the background; killed (SIGKILL) on destruction if still running.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv,
                    const std::map<std::string, std::string>& env = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit code or -signal.
  int Wait();
  bool Running();
  // Output so far (stdout and stderr are files, readable any time).
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string out_path_, err_path_;
};

// Polls cond every 10 ms until it holds or the timeout passes. Returns cond's last value.
bool WaitFor(const std::function<bool()>& cond,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Path of the built sync-agent binary.
std::string AgentBinary();
// Runs the agent with args.
ProcessResult RunAgent(const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env = {});

}  // namespace sync_agent::testing
