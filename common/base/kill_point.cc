#include "common/base/kill_point.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sync_agent {
namespace {

struct KillAt {
  bool armed = false;
  std::string point;
  long pass = 1;
  std::atomic<long> seen{0};
};

KillAt& Parsed() {
  static KillAt* at = [] {
    auto* k = new KillAt();  // never freed: it must outlive every caller
    const char* v = std::getenv("SYNC_AGENT_TEST_KILL_AT");
    if (v == nullptr || *v == '\0') return k;
    std::string s(v);
    size_t colon = s.rfind(':');
    k->point = s.substr(0, colon);
    if (colon != std::string::npos) k->pass = std::max(1L, std::atol(s.c_str() + colon + 1));
    k->armed = true;
    return k;
  }();
  return *at;
}

}  // namespace

void KillPoint(const char* point) {
  KillAt& at = Parsed();
  if (!at.armed || at.point != point) return;
  if (at.seen.fetch_add(1) + 1 == at.pass) ::kill(::getpid(), SIGKILL);
}

}  // namespace sync_agent
