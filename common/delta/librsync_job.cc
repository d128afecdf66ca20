#include "common/delta/librsync_job.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "common/base/log.h"

namespace sync_agent::delta_internal {
namespace {

void ForwardLibrsyncLog(rs_loglevel level, const char* message) {
  // librsync says why it gave up ("bogus command 0x55") in a log line; the
  // Status we return already names the stage and offset, so this is detail.
  LogDebug(std::string("librsync: ") + message);
}

std::string Where(const JobContext& context, uint64_t offset) {
  return std::string(context.stage) + " at " + std::string(context.input_name) + " byte " +
         std::to_string(offset);
}

constexpr int kMaxStalls = 3;

}  // namespace

void RouteLibrsyncLog() {
  static std::once_flag once;
  std::call_once(once, [] { rs_trace_to(&ForwardLibrsyncLog); });
}

Status RsError(rs_result result, std::string_view context) {
  const char* what = rs_strerror(result);
  switch (result) {
    case RS_BAD_MAGIC:
    case RS_CORRUPT:
      return Status::Corruption(context, what);
    case RS_INPUT_ENDED:
      return Status::Corruption(context, std::string("truncated: ") + what);
    case RS_PARAM_ERROR:
      return Status::InvalidArgument(context, what);
    case RS_UNIMPLEMENTED:
      return Status::Unsupported(context, what);
    default:  // RS_IO_ERROR, RS_MEM_ERROR, RS_INTERNAL_ERROR
      return Status::IOError(context, std::string("librsync: ") + what);
  }
}

Status RunJob(rs_job_t* job, const InputPull& input, const ByteSink& out, const JobBuffers& buffers,
              const JobContext& context) {
  // Not zero-filled: short jobs (a small delta) then touch only the pages
  // they use.
  const size_t in_size = std::max<size_t>(buffers.input, 1);
  const size_t out_size = std::max<size_t>(buffers.output, 1);
  auto in_buf = std::make_unique_for_overwrite<char[]>(in_size);
  auto out_buf = std::make_unique_for_overwrite<char[]>(out_size);
  rs_buffers_t b{};
  b.next_in = in_buf.get();
  uint64_t pulled = 0;         // input bytes handed to librsync so far
  uint64_t last_consumed = 0;  // to detect a job that stopped moving
  int stalls = 0;
  for (;;) {
    if (!b.eof_in && b.avail_in < in_size) {
      // librsync keeps what it needs of partial input in its own scoop, so
      // whatever it left is simply moved to the front and topped up.
      if (b.avail_in > 0) std::memmove(in_buf.get(), b.next_in, b.avail_in);
      b.next_in = in_buf.get();
      SA_ASSIGN_OR_RETURN(size_t got, input(in_buf.get() + b.avail_in, in_size - b.avail_in));
      if (got == 0) b.eof_in = 1;
      b.avail_in += got;
      pulled += got;
    }
    b.next_out = out_buf.get();
    b.avail_out = out_size;
    rs_result result = rs_job_iter(job, &b);
    size_t produced = out_size - b.avail_out;
    if (produced > 0) SA_RETURN_IF_ERROR(out(out_buf.get(), produced));
    const uint64_t consumed = pulled - b.avail_in;
    if (result == RS_DONE) {
      bool more = b.avail_in > 0;
      if (!more && !b.eof_in) {
        char probe;
        SA_ASSIGN_OR_RETURN(size_t got, input(&probe, 1));
        more = got > 0;
      }
      if (more) {
        return Status::Corruption(Where(context, context.input_offset + consumed),
                                  "unexpected data after the end of the stream");
      }
      return Status::OK();
    }
    if (result != RS_BLOCKED) {
      std::string where = Where(context, context.input_offset + consumed);
      if (context.callback_status != nullptr && !context.callback_status->ok()) {
        return context.callback_status->WithContext(where);
      }
      return RsError(result, where);
    }
    // At the end of input a blocked job must move; librsync's own no-progress
    // check only covers calls that offered both input and output space.
    const bool moved = produced > 0 || consumed != last_consumed;
    stalls = moved || !b.eof_in ? 0 : stalls + 1;
    if (stalls > kMaxStalls) {
      return Status::IOError(Where(context, context.input_offset + consumed),
                             "librsync made no progress");
    }
    last_consumed = consumed;
  }
}

}  // namespace sync_agent::delta_internal
