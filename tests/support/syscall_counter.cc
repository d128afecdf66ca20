#include "tests/support/syscall_counter.h"

#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <utility>

namespace sync_agent::testing {
namespace {

constexpr const char* kStrace = "/usr/bin/strace";

bool IsNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789.") == std::string::npos;
}

}  // namespace

uint64_t SyscallCounts::Calls(const std::string& name) const {
  auto it = calls.find(name);
  return it == calls.end() ? 0 : it->second;
}

std::string SyscallCounts::Top(size_t n) const {
  std::vector<std::pair<uint64_t, std::string>> sorted;
  for (const auto& [name, count] : calls) sorted.emplace_back(count, name);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string out;
  for (size_t i = 0; i < sorted.size() && i < n; ++i) {
    out += (i ? " " : "") + sorted[i].second + "=" + std::to_string(sorted[i].first);
  }
  return out;
}

bool ParseStraceSummary(const std::string& text, std::map<std::string, uint64_t>* calls,
                        uint64_t* total) {
  calls->clear();
  *total = 0;
  bool saw_total = false;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string word; fields >> word;) f.push_back(word);
    // "% time seconds usecs/call calls [errors] syscall": 5 or 6 fields, the
    // first four numbers; the header and the dashed rules are not.
    if (f.size() < 5 || f.size() > 6) continue;
    if (!IsNumber(f[0]) || !IsNumber(f[1]) || !IsNumber(f[2]) || !IsNumber(f[3])) continue;
    uint64_t count = std::stoull(f[3]);
    if (f.back() == "total") {
      *total = count;
      saw_total = true;
    } else {
      (*calls)[f.back()] += count;
    }
  }
  return saw_total;
}

bool StraceAvailable() {
  if (::access(kStrace, X_OK) != 0) return false;
  ProcessResult r = RunProcess({kStrace, "-f", "-qq", "-c", "-o", "/dev/null", "--", "/bin/true"});
  return r.exit_code == 0;
}

SyscallCounts CountSyscalls(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env) {
  SyscallCounts out;
  TempDir dir;
  const std::string summary = dir.Sub("strace-summary.txt");
  std::vector<std::string> traced = {kStrace, "-f", "-qq", "-c", "-o", summary, "--"};
  traced.insert(traced.end(), argv.begin(), argv.end());
  out.result = RunProcess(traced, env);
  const std::string text = ReadFile(summary);
  if (!ParseStraceSummary(text, &out.calls, &out.total)) {
    out.calls.clear();
    out.error = "strace wrote no summary to " + summary + " (exit code " +
                std::to_string(out.result.exit_code) + "): " + text + out.result.err;
  }
  return out;
}

}  // namespace sync_agent::testing
