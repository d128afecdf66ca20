#include "common/delta/rsync_delta.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/delta/delta_format.h"
#include "common/delta/librsync_job.h"
#include "common/fs/env.h"

namespace sync_agent {

using delta_internal::DeltaStreamParser;
using delta_internal::InputPull;
using delta_internal::JobBuffers;
using delta_internal::JobContext;
using delta_internal::RsJob;
using delta_internal::RsSignature;
using delta_internal::RunJob;
using delta_internal::SignatureHeader;

namespace {

constexpr uint32_t kMinChosenBlockLen = 1024;
constexpr uint32_t kMaxChosenBlockLen = 1u << 20;
constexpr uint32_t kChosenStrongLen = 16;

InputPull PullFrom(SequentialFile* file) {
  return [file](char* buf, size_t n) { return file->Read(buf, n); };
}

// Hands out an in-memory stream in the pieces librsync asks for.
InputPull PullFrom(std::string_view bytes) {
  return [bytes, pos = size_t{0}](char* buf, size_t n) mutable -> Result<size_t> {
    size_t k = std::min(n, bytes.size() - pos);
    std::memcpy(buf, bytes.data() + pos, k);
    pos += k;
    return k;
  };
}

// Hands out a delta stored in a file, in the pieces asked for.
InputPull PullFrom(const RandomAccessFile& file, uint64_t size) {
  return [&file, size, pos = uint64_t{0}](char* buf, size_t n) mutable -> Result<size_t> {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, size - pos));
    if (want == 0) return size_t{0};
    SA_ASSIGN_OR_RETURN(size_t got, file.ReadAt(pos, buf, want));
    if (got != want) {
      return Status::IOError("the delta file ended at byte " + std::to_string(pos + got) +
                             ", expected " + std::to_string(size) + " bytes");
    }
    pos += got;
    return got;
  };
}

Status Discard(const char*, size_t) { return Status::OK(); }

// The patch job's view of the basis. librsync asks for pieces of each COPY
// (at most the free output space at a time) and writes what we return.
struct BasisReader {
  const RandomAccessFile* file;
  uint64_t size;
  Status status;  // why the last call failed

  static rs_result Copy(void* opaque, rs_long_t pos, size_t* len, void** buf) {
    auto* self = static_cast<BasisReader*>(opaque);
    const uint64_t want = *len;
    if (pos < 0 || static_cast<uint64_t>(pos) >= self->size ||
        want > self->size - static_cast<uint64_t>(pos)) {
      self->status = Status::Corruption(
          "copy reads " + std::to_string(want) + " bytes at basis offset " + std::to_string(pos) +
          ", outside the basis (" + std::to_string(self->size) + " bytes)");
      return RS_CORRUPT;
    }
    // Read straight into librsync's output buffer (*buf points into it).
    Result<size_t> got = self->file->ReadAt(static_cast<uint64_t>(pos), *buf, *len);
    if (!got.ok()) {
      self->status = got.status();
      return RS_IO_ERROR;
    }
    if (*got != want) {
      self->status = Status::IOError("the basis ended at byte " + std::to_string(pos + *got) +
                                     ", expected " + std::to_string(self->size) + " bytes");
      return RS_IO_ERROR;
    }
    return RS_DONE;
  }
};

}  // namespace

SignatureParams ChooseSignatureParams(uint64_t file_size) {
  // The rsync trade-off: a signature costs (4 + strong_len) bytes per block,
  // so file_size / block_len entries, while every changed byte costs up to a
  // block of data to fetch. Their sum is smallest near block_len =
  // sqrt(file_size) (16 KiB for 256 MiB, 128 KiB for 16 GiB). Powers of two
  // keep blocks aligned with pages and HTTP ranges. 1 KiB floor: smaller
  // blocks make signatures of small files mostly overhead; 1 MiB cap: one
  // changed byte never costs more than 1 MiB (sqrt reaches it only at 1 TiB).
  uint64_t block = 1;
  while (block < kMaxChosenBlockLen && (block * 2) * (block * 2) <= file_size) block *= 2;
  // block <= sqrt(size) < 2 * block; take the nearer in ratio (geometric mean).
  if (block < kMaxChosenBlockLen && file_size / block >= 2 * block) block *= 2;
  SignatureParams params;
  params.block_len =
      static_cast<uint32_t>(std::clamp<uint64_t>(block, kMinChosenBlockLen, kMaxChosenBlockLen));
  // 128 bits of BLAKE2: a false block match needs a 2^-128 accident per weak
  // sum hit, negligible even over terabytes; half the 32-byte maximum keeps
  // signatures at 20 bytes per block. Every rebuilt file is still checked
  // against its sha256.
  params.strong_len = kChosenStrongLen;
  return params;
}

// ---- Signature ---------------------------------------------------------

struct Signature::Rep {
  RsSignature sig;
  SignatureHeader header;
};

Signature::~Signature() = default;
Signature::Signature(Signature&&) noexcept = default;
Signature& Signature::operator=(Signature&&) noexcept = default;

Result<Signature> Signature::Load(std::string_view bytes) {
  delta_internal::RouteLibrsyncLog();
  // Our own check first: librsync trusts block_len and strong_len (it asserts
  // on some values) and accepts a signature cut inside a weak sum.
  SA_ASSIGN_OR_RETURN(SignatureHeader header, delta_internal::ParseSignatureHeader(bytes));
  rs_signature_t* raw = nullptr;
  RsJob job(rs_loadsig_begin(&raw));
  RsSignature sig(raw);
  if (!job || !sig) return Status::IOError("load signature", "librsync could not start a job");
  JobContext context{"load signature", "signature"};
  SA_RETURN_IF_ERROR(RunJob(job.get(), PullFrom(bytes), Discard, JobBuffers{}, context));
  rs_result built = rs_build_hash_table(sig.get());
  if (built != RS_DONE) return delta_internal::RsError(built, "load signature: build hash table");
  Signature loaded;
  loaded.rep_ = std::make_unique<Rep>(Rep{std::move(sig), header});
  return loaded;
}

uint32_t Signature::block_len() const { return rep_->header.block_len; }
uint32_t Signature::strong_len() const { return rep_->header.strong_len; }
uint64_t Signature::block_count() const { return rep_->header.block_count; }

rs_signature_t* SignatureAccess::Get(Signature& signature) {
  return signature.rep_ ? signature.rep_->sig.get() : nullptr;
}

// ---- Jobs --------------------------------------------------------------

namespace delta_internal {

Status ComputeSignature(SequentialFile* input, const SignatureParams& params, const ByteSink& out,
                        const JobBuffers& buffers) {
  RouteLibrsyncLog();
  if (params.block_len == 0 || params.block_len > kMaxBlockLen || params.strong_len == 0 ||
      params.strong_len > kMaxStrongLen) {
    return Status::InvalidArgument(
        "compute signature", "block_len " + std::to_string(params.block_len) + " / strong_len " +
                                 std::to_string(params.strong_len) + " out of range");
  }
  RsJob job(rs_sig_begin(params.block_len, params.strong_len, RS_RK_BLAKE2_SIG_MAGIC));
  if (!job) return Status::InvalidArgument("compute signature", "librsync refused the parameters");
  return RunJob(job.get(), PullFrom(input), out, buffers, {"compute signature", "input"});
}

Status ComputeDelta(Signature& basis_signature, SequentialFile* input, const ByteSink& out,
                    const JobBuffers& buffers) {
  RouteLibrsyncLog();
  rs_signature_t* sig = SignatureAccess::Get(basis_signature);
  if (sig == nullptr)
    return Status::InvalidArgument("compute delta", "empty (moved-from) signature");
  RsJob job(rs_delta_begin(sig));
  if (!job) return Status::IOError("compute delta", "librsync could not start a job");
  return RunJob(job.get(), PullFrom(input), out, buffers, {"compute delta", "input"});
}

Status PatchFileWithLibrsync(const RandomAccessFile& basis, uint64_t basis_size,
                             const RandomAccessFile& delta, uint64_t delta_size,
                             const ByteSink& out, const JobBuffers& buffers) {
  RouteLibrsyncLog();
  BasisReader reader{&basis, basis_size, Status::OK()};
  RsJob job(rs_patch_begin(&BasisReader::Copy, &reader));
  if (!job) return Status::IOError("apply delta", "librsync could not start a job");
  JobContext context{"apply delta", "delta"};
  context.callback_status = &reader.status;
  return RunJob(job.get(), PullFrom(delta, delta_size), out, buffers, context);
}

Status PatchWithLibrsync(const RandomAccessFile& basis, uint64_t basis_size, std::string_view delta,
                         const ByteSink& out, const JobBuffers& buffers) {
  StringFile file(delta);
  return PatchFileWithLibrsync(basis, basis_size, file, delta.size(), out, buffers);
}

Status ApplyDelta(const RandomAccessFile& basis, uint64_t basis_size, std::string_view delta,
                  const ByteSink& out, const JobBuffers& buffers) {
  StringFile file(delta);
  return ApplyDeltaFile(basis, basis_size, file, delta.size(), out, buffers, nullptr);
}

Status ApplyDeltaFile(const RandomAccessFile& basis, uint64_t basis_size,
                      const RandomAccessFile& delta, uint64_t delta_size, const ByteSink& out,
                      const JobBuffers& buffers, uint64_t* copied_bytes) {
  uint64_t copied = 0;
  // Validate the whole delta before writing a byte: a corrupt delta then
  // leaves no output, errors name the exact command, and librsync 2.3.2's
  // blind spots (it keeps COPY lengths in an int, ignores bytes after END)
  // cannot turn corruption into wrong output.
  DeltaStreamParser parser("apply delta", [basis_size, &copied](const DeltaCommand& c,
                                                                uint64_t at) {
    if (c.kind == DeltaCommand::Kind::kCopy) copied += c.length;
    if (c.kind == DeltaCommand::Kind::kCopy && c.source_offset + c.length > basis_size) {
      return Status::Corruption("apply delta at delta byte " + std::to_string(at),
                                "copy of " + std::to_string(c.length) + " bytes at basis offset " +
                                    std::to_string(c.source_offset) + " reads past the basis (" +
                                    std::to_string(basis_size) + " bytes)");
    }
    return Status::OK();
  });
  // A delta in a file is read twice (checked, then applied) in pieces, so
  // memory does not grow with its size.
  std::vector<char> buf(std::min<uint64_t>(delta_size, 1 << 20));
  InputPull pull = PullFrom(delta, delta_size);
  while (true) {
    SA_ASSIGN_OR_RETURN(size_t n, pull(buf.data(), buf.size()));
    if (n == 0) break;
    SA_RETURN_IF_ERROR(parser.Feed(buf.data(), n));
  }
  SA_RETURN_IF_ERROR(parser.Finish());
  if (copied_bytes != nullptr) *copied_bytes = copied;
  return PatchFileWithLibrsync(basis, basis_size, delta, delta_size, out, buffers);
}

}  // namespace delta_internal

Status ComputeSignature(SequentialFile* input, const SignatureParams& params, const ByteSink& out) {
  return delta_internal::ComputeSignature(input, params, out, JobBuffers{});
}

Status ComputeDelta(Signature& basis_signature, SequentialFile* input, const ByteSink& out) {
  return delta_internal::ComputeDelta(basis_signature, input, out, JobBuffers{});
}

Status ApplyDelta(const RandomAccessFile& basis, uint64_t basis_size, std::string_view delta,
                  const ByteSink& out) {
  return delta_internal::ApplyDelta(basis, basis_size, delta, out, JobBuffers{});
}

Status ApplyDelta(const RandomAccessFile& basis, uint64_t basis_size, const RandomAccessFile& delta,
                  uint64_t delta_size, const ByteSink& out, uint64_t* copied_bytes) {
  return delta_internal::ApplyDeltaFile(basis, basis_size, delta, delta_size, out, JobBuffers{},
                                        copied_bytes);
}

Result<std::vector<DeltaCommand>> ParseDelta(std::string_view delta) {
  std::vector<DeltaCommand> commands;
  DeltaStreamParser parser("parse delta", [&commands](const DeltaCommand& c, uint64_t) {
    commands.push_back(c);
    return Status::OK();
  });
  SA_RETURN_IF_ERROR(parser.Feed(delta.data(), delta.size()));
  SA_RETURN_IF_ERROR(parser.Finish());
  return commands;
}

}  // namespace sync_agent
