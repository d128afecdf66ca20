// Counting a program's system calls with strace, so that a test can bound the
// work a pass does (and forbid sleeps) by counting, not by timing.
//
//   SyscallCounts counts = CountSyscalls({AgentBinary(), "--once", ...});
//   EXPECT_EQ(counts.Calls("clock_nanosleep"), 0u);
//
// The program runs under `strace -f -qq -c`: every thread and child process
// is counted, and the program's own output and exit code come back as they
// would without strace. strace slows the program down (each call stops it
// twice), so the traced run must not race a deadline of its own.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/support/test_util.h"

namespace sync_agent::testing {

struct SyscallCounts {
  ProcessResult result;                   // the traced program's exit code and output
  std::map<std::string, uint64_t> calls;  // system call -> calls (failed ones included)
  uint64_t total = 0;                     // all calls
  // Not empty when strace did not run or its summary could not be read;
  // calls and total are then empty.
  std::string error;

  uint64_t Calls(const std::string& name) const;
  // "futex=120 read=80 ..." for the n most frequent calls, for messages.
  std::string Top(size_t n) const;
};

// True if /usr/bin/strace exists and may trace a child here (ptrace is allowed).
bool StraceAvailable();

// Runs argv (argv[0] a path) under strace with env added to the environment.
SyscallCounts CountSyscalls(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env = {});

// Parses the summary table `strace -c` writes ("% time seconds usecs/call
// calls errors syscall", then a "total" line). Returns false if it has none.
bool ParseStraceSummary(const std::string& text, std::map<std::string, uint64_t>* calls,
                        uint64_t* total);

}  // namespace sync_agent::testing
