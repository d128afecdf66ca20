#include "common/http/transfer_watch.h"

#include <utility>

#include "common/base/time_util.h"

namespace sync_agent {
TransferWatch::TransferWatch(TransferLimits limits, const CancelFlag* cancel, std::string ctx)
    : limits_(std::move(limits)), cancel_(cancel), ctx_(std::move(ctx)) {}

void TransferWatch::StartHead(Clock::time_point now) {
  in_body_ = false;
  head_start_ = now;
  last_byte_ = now;
  head_bytes_ = 0;
}

void TransferWatch::StartBody(Clock::time_point now, const uint64_t* body_received,
                              std::optional<uint64_t> body_length) {
  in_body_ = true;
  body_received_ = body_received;
  body_length_ = body_length;
  last_byte_ = now;
  window_start_ = now;
  window_bytes_ = 0;
  window_paused_ = Clock::duration::zero();
}

void TransferWatch::Received(size_t n, Clock::time_point now) {
  if (n == 0) return;
  last_byte_ = now;
  if (in_body_) {
    window_bytes_ += n;
  } else {
    head_bytes_ += n;
  }
}

void TransferWatch::Paused(Clock::duration d, Clock::time_point now) {
  last_byte_ = now;
  if (in_body_) window_paused_ += d;
}

std::string TransferWatch::BodyProgress() const {
  if (body_received_ == nullptr) return "";
  return "; received " + std::to_string(*body_received_) + " of " +
         (body_length_ ? std::to_string(*body_length_) : std::string("?")) + " bytes";
}

Status TransferWatch::Check(Clock::time_point now) {
  if (cancel_ != nullptr && cancel_->load()) {
    if (!in_body_) return Status::Cancelled(ctx_, "cancelled while waiting for the response");
    return Status::Cancelled(
        ctx_, "cancelled after " + std::to_string(body_received_ ? *body_received_ : 0) + " bytes");
  }
  if (limits_.deadline && now >= *limits_.deadline) {
    return Status::Network(ctx_, "did not complete within " + limits_.deadline_what +
                                     (in_body_ ? BodyProgress()
                                               : "; the response head had not "
                                                 "arrived"));
  }
  if (now - last_byte_ >= limits_.stall_timeout) {
    return Status::Network(ctx_, "timed out after " + FormatDuration(limits_.stall_timeout) +
                                     " without data (http_timeout)" + BodyProgress());
  }
  if (!in_body_) {
    if (now - head_start_ >= limits_.head_timeout) {
      return Status::Network(ctx_, "the response head (status line and headers) was not complete " +
                                       FormatDuration(limits_.head_timeout) +
                                       " after the request (http_timeout); " +
                                       std::to_string(head_bytes_) +
                                       " bytes of it arrived: the server is too slow or hostile");
    }
    return Status::OK();
  }
  const uint64_t limit = limits_.low_speed_bytes_per_second;
  if (limit == 0) return Status::OK();
  const Clock::duration elapsed = now - window_start_ - window_paused_;
  if (elapsed < limits_.low_speed_time) return Status::OK();
  const double seconds = std::chrono::duration<double>(elapsed).count();
  if (static_cast<double>(window_bytes_) < static_cast<double>(limit) * seconds) {
    return Status::Network(
        ctx_, "the body arrived slower than " + FormatBytes(limit) + "/s over " +
                  FormatDuration(limits_.low_speed_time) + " (" + FormatBytes(window_bytes_) +
                  " in that time" + BodyProgress() +
                  "): the server or the link is too slow, or the server is hostile; if the "
                  "link is really this slow, lower http_low_speed_limit or raise "
                  "http_low_speed_time");
  }
  // Fast enough over this window: measure the next one.
  window_start_ = now;
  window_bytes_ = 0;
  window_paused_ = Clock::duration::zero();
  return Status::OK();
}

}  // namespace sync_agent
