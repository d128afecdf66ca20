// The one place that owns librsync objects and drives its jobs. Private to
// common/delta (and its tests, which vary the buffer sizes).
//
// librsync runs only through rs_job_iter() with buffers we own, as its
// doc/streaming.md describes; its stdio helpers call exit() on errors.
#pragma once

#include <librsync.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "common/base/status.h"
#include "common/delta/rsync_delta.h"

namespace sync_agent {

namespace delta_internal {

struct RsJobDeleter {
  void operator()(rs_job_t* job) const noexcept { rs_job_free(job); }
};
// Owns a job; unique_ptr makes it move-only.
using RsJob = std::unique_ptr<rs_job_t, RsJobDeleter>;

struct RsSignatureDeleter {
  void operator()(rs_signature_t* sig) const noexcept { rs_free_sumset(sig); }
};
// Owns a loaded signature (and its hash table, once built).
using RsSignature = std::unique_ptr<rs_signature_t, RsSignatureDeleter>;

// Sizes of the two buffers a job streams through. Memory per job is these
// plus what librsync keeps (about one block), whatever the file size.
struct JobBuffers {
  size_t input = 256 << 10;
  size_t output = 256 << 10;
};

// Fills buf with up to n bytes of job input; 0 means the input has ended.
using InputPull = std::function<Result<size_t>(char* buf, size_t n)>;

// Describes a running job for error messages: "<stage> at <input_name> byte N".
struct JobContext {
  std::string_view stage;       // "apply delta"
  std::string_view input_name;  // "delta"
  uint64_t input_offset = 0;    // where the job's input starts in that stream
  // A callback of the job (the patch's copy callback) stores the real reason
  // here before returning an error to librsync; it wins over the rs_result.
  const Status* callback_status = nullptr;
};

// Runs job until it is done, pulling input and pushing every output byte to
// out. A failure of input or out is returned unchanged; a librsync error
// becomes a Status (see RsError). Input left over when the job finishes is
// kCorruption. The job is unusable afterwards either way.
Status RunJob(rs_job_t* job, const InputPull& input, const ByteSink& out, const JobBuffers& buffers,
              const JobContext& context);

// rs_result -> Status: bad magic, corrupt values and truncated input
// (RS_BAD_MAGIC, RS_CORRUPT, RS_INPUT_ENDED) are kCorruption; RS_IO_ERROR and
// RS_MEM_ERROR kIOError; RS_PARAM_ERROR kInvalidArgument; RS_UNIMPLEMENTED
// kUnsupported; anything else (RS_INTERNAL_ERROR) kIOError.
Status RsError(rs_result result, std::string_view context);

// Sends librsync's own log lines to our log at debug level instead of
// stderr. Idempotent and thread safe; every entry point calls it.
void RouteLibrsyncLog();

// Versions of the public functions with explicit buffer sizes.
Status ComputeSignature(SequentialFile* input, const SignatureParams& params, const ByteSink& out,
                        const JobBuffers& buffers);
Status ComputeDelta(Signature& basis_signature, SequentialFile* input, const ByteSink& out,
                    const JobBuffers& buffers);
Status ApplyDelta(const RandomAccessFile& basis, uint64_t basis_size, std::string_view delta,
                  const ByteSink& out, const JobBuffers& buffers);
// ApplyDelta without the validating pass over the delta: only librsync's
// checks and the copy callback's bounds check stand between a corrupt delta
// and the basis. For tests of that callback.
Status ApplyDeltaFile(const RandomAccessFile& basis, uint64_t basis_size,
                      const RandomAccessFile& delta, uint64_t delta_size, const ByteSink& out,
                      const JobBuffers& buffers, uint64_t* copied_bytes);
Status PatchWithLibrsync(const RandomAccessFile& basis, uint64_t basis_size, std::string_view delta,
                         const ByteSink& out, const JobBuffers& buffers);
Result<MatchPlan> MatchSignature(std::string_view signature_bytes, uint64_t new_size,
                                 const RandomAccessFile& old, uint64_t old_size, int threads,
                                 const JobBuffers& buffers);
Result<MatchPlan> MatchAligned(std::string_view signature_bytes, uint64_t new_size,
                               const RandomAccessFile& old, uint64_t old_size,
                               const std::vector<int64_t>& shifts, int threads);
Result<MatchSample> SampleMatch(std::string_view signature_bytes, uint64_t new_size,
                                const RandomAccessFile& old, uint64_t old_size, int windows,
                                const JobBuffers& buffers);

}  // namespace delta_internal

// Gives this module's code the rs_signature_t inside a Signature.
struct SignatureAccess {
  static rs_signature_t* Get(Signature& signature);
};

}  // namespace sync_agent
