// sync-agent: keeps mirror nodes' copies of model repositories in sync with
// an origin. This file only dispatches to a command.
#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "agent/commands.h"
#include "common/base/log.h"

namespace {

constexpr const char* kUsage =
    "usage: sync-agent <command> [options]\n"
    "\n"
    "Node commands:\n"
    "  --once, once     sync every configured repository once, then exit\n"
    "  run              run as a daemon: sync every interval until SIGTERM\n"
    "  status [REPO]    show each repository's revision, last run and health\n"
    "  verify [REPO]    check served trees and stored objects; --repair fixes them\n"
    "  pin REPO REV     serve a revision the node holds and keep it served (rollback)\n"
    "  unpin REPO       let the next run serve the latest revision again\n"
    "  stats LOG...     download statistics from nginx access logs (--json, --html)\n"
    "\n"
    "Origin commands:\n"
    "  publish DIR      publish a directory as a new revision of a repository\n"
    "  serve ROOT       serve a publish root (or mirror root) over HTTP\n"
    "  keygen --out KEY make an ed25519 key pair for publish --sign-key\n"
    "\n"
    "Common options: --config FILE (default /etc/sync-agent/sync-agent.toml),\n"
    "  --log-format plain|json, --help, --version\n"
    "Run `sync-agent <command> --help` for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  // A pass runs dozens of threads (a poller per connection, transfers);
  // glibc would give each its own malloc arena and keep what they freed,
  // which roughly doubles the peak RSS for no speed the agent can measure.
  mallopt(M_ARENA_MAX, 4);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return sync_agent::kExitUsage;
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("sync-agent %s\n", SA_VERSION);
    return 0;
  }
  if (cmd == "--once" || cmd == "once") return sync_agent::CmdOnce(rest);
  if (cmd == "run") return sync_agent::CmdRun(rest);
  if (cmd == "status") return sync_agent::CmdStatus(rest);
  if (cmd == "publish") return sync_agent::CmdPublish(rest);
  if (cmd == "serve") return sync_agent::CmdServe(rest);
  if (cmd == "keygen") return sync_agent::CmdKeygen(rest);
  if (cmd == "verify") return sync_agent::CmdVerify(rest);
  if (cmd == "pin") return sync_agent::CmdPin(rest);
  if (cmd == "unpin") return sync_agent::CmdUnpin(rest);
  if (cmd == "stats") return sync_agent::CmdStats(rest);
  // Options before the command, e.g. `sync-agent --config F --once`.
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--once") {
      std::vector<std::string> others = args;
      others.erase(others.begin() + static_cast<long>(i));
      return sync_agent::CmdOnce(others);
    }
  }
  std::fprintf(stderr, "sync-agent: unknown command \"%s\"\n\n%s", cmd.c_str(), kUsage);
  return sync_agent::kExitUsage;
}
