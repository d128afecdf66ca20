// TransferWatch: the limits one HTTP request runs under besides the socket's
// own errors: the caller's stop flag, the stall timeout (no byte for
// http_timeout), the deadline of the response head, an optional deadline for
// the whole request, and a minimum transfer rate for the body (what curl's
// --speed-limit and --speed-time do). HttpClient consults it before every
// read and, while a read waits for bytes, every wait slice, so that each
// limit acts within a slice however slowly (or not at all) the server sends.
//
// The time is always passed in, so the rules can be tested without waiting.
// Not thread-safe: one watch per request, used by the thread running it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/base/cancel.h"
#include "common/base/status.h"

namespace sync_agent {

struct TransferLimits {
  using Clock = std::chrono::steady_clock;
  // No byte for this long fails the request (http_timeout).
  std::chrono::milliseconds stall_timeout{60000};
  // The status line and headers must be complete this long after the
  // request was sent (http_timeout too: a head is a few hundred bytes).
  std::chrono::milliseconds head_timeout{60000};
  // The body must arrive at least this fast on average over each
  // low_speed_time (http_low_speed_limit, http_low_speed_time); 0: no minimum.
  uint64_t low_speed_bytes_per_second = 1024;
  std::chrono::milliseconds low_speed_time{60000};
  // When set, the whole request (every redirect, head and body) must be done
  // by then; what the deadline is for, for the message (e.g. "2m, the limit
  // for a revision pointer").
  std::optional<Clock::time_point> deadline;
  std::string deadline_what;
};

class TransferWatch {
 public:
  using Clock = TransferLimits::Clock;

  // ctx names the request in messages ("GET <url>"). cancel may be null.
  TransferWatch(TransferLimits limits, const CancelFlag* cancel, std::string ctx);

  // The request has been sent: the stall timer and the head deadline start.
  void StartHead(Clock::time_point now);
  // The head is complete: the body's rate windows start. body_received
  // (owned by the caller, outliving the watch's use) counts the body's bytes
  // for messages; body_length is its Content-Length when known.
  void StartBody(Clock::time_point now, const uint64_t* body_received,
                 std::optional<uint64_t> body_length);
  // n bytes arrived from the server.
  void Received(size_t n, Clock::time_point now);
  // The agent's own bandwidth cap held the reader for d (until now): that is
  // neither a stall nor a slow server, so it is left out of both.
  void Paused(Clock::duration d, Clock::time_point now);

  // OK while the request may go on. Otherwise kCancelled when the stop flag
  // is set, else kNetwork naming the limit that was passed, what arrived,
  // and the config keys that set it.
  Status Check(Clock::time_point now);

  const CancelFlag* cancel() const { return cancel_; }

 private:
  std::string BodyProgress() const;

  TransferLimits limits_;
  const CancelFlag* cancel_;
  std::string ctx_;
  bool in_body_ = false;
  Clock::time_point head_start_{};
  Clock::time_point last_byte_{};
  uint64_t head_bytes_ = 0;
  const uint64_t* body_received_ = nullptr;
  std::optional<uint64_t> body_length_;
  // The current rate window: when it started, the bytes in it, and the time
  // the bandwidth cap held the reader within it.
  Clock::time_point window_start_{};
  uint64_t window_bytes_ = 0;
  Clock::duration window_paused_{};
};

}  // namespace sync_agent
