// FaultProxy: a TCP proxy on loopback in front of a real server (nginx), that
// misbehaves on demand the way cross-region links do: it cuts connections
// after a number of response bytes, stalls them (stops forwarding but keeps
// them open), or goes down (closes every connection and refuses new ones),
// either now or once a number of bytes went through. The server behind it
// stays real: these are faults nginx cannot produce on demand.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace sync_agent::testing {

class FaultProxy {
 public:
  explicit FaultProxy(int upstream_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const;
  std::string url() const;  // "http://127.0.0.1:<port>"

  // Each connection is closed once it has sent this many response bytes (0: never).
  void CutEvery(uint64_t bytes);
  // Each connection stops forwarding once it has sent this many response
  // bytes, and stays open (0: never).
  void StallAfter(uint64_t bytes);
  // Down: every connection is closed and new ones are closed at once.
  void SetDown(bool down);
  // Goes down by itself once this many response bytes went through in all (0: never).
  void DownAfter(uint64_t total_bytes);

  uint64_t bytes_sent() const;  // response bytes forwarded, all connections
  int connections() const;      // accepted so far
  int max_active() const;       // the most connections open at once

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace sync_agent::testing
