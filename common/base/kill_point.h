// KillPoint: a test-only seam for the kill matrix
// (tests/integration/kill_matrix_test.cc). It lets a test SIGKILL the agent
// at a named point of a run, deterministically, where killing it from
// outside at the right instant cannot be arranged (between the swap and the
// database update, between removing an object and forgetting it).
//
// SYNC_AGENT_TEST_KILL_AT="<point>[:<n>]", read once per process, makes the
// n-th (default: the first) pass through KillPoint("<point>") raise SIGKILL
// on the process itself: no destructor, atexit handler or buffered write
// runs, exactly as if the operator or the OOM killer had sent it. Unset, as
// in production, a call costs one load and a comparison. The points are
// listed where they are used (grep KillPoint); no other behaviour depends on
// the variable. Thread safe.
#pragma once

namespace sync_agent {

void KillPoint(const char* point);

}  // namespace sync_agent
