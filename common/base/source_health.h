// What a node has learnt of one source of a repository: how its requests went
// and how fast it served. A plain record, shared by the transfer code that
// measures it (common/transfer/source_set.h) and the database that keeps it
// between runs (table source_health, common/db/state_db.h); it lives here so
// that neither of those depends on the other.
#pragma once

#include <cstdint>
#include <string>

namespace sync_agent {

struct SourceHealthRow {
  std::string url;
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t bytes = 0;
  uint32_t consecutive_errors = 0;
  double latency_ms = 0;      // moving average time to the first byte (0: unknown)
  double throughput_bps = 0;  // moving average bytes per second of one request (0: unknown)
  std::string last_error;
  int64_t last_error_at_ms = 0;
  int64_t last_ok_at_ms = 0;
};

}  // namespace sync_agent
