// The HTTP client's chunked decoder (common/http/chunked_decoder), fed the
// input as a raw chunked body. Invariants: the decoded bytes, the result,
// how far the decoder read and whether it finished do not depend on how the
// body is split into reads; it never produces more bytes than it read; and
// what it decodes, sent again as one chunk, decodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/http/chunked_decoder.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

struct Decoded {
  std::string body;
  Status status;
  size_t consumed = 0;
  bool done = false;
};

Decoded Decode(std::string_view raw, const std::vector<size_t>& pieces) {
  Decoded d;
  ChunkedDecoder decoder;
  ChunkedDecoder::Output out = [&d](const char* data, size_t n) {
    d.body.append(data, n);
    return Status::OK();
  };
  size_t at = 0;
  for (size_t n : pieces) {
    size_t consumed = 0;
    d.status = decoder.Feed(raw.data() + at, n, &consumed, out);
    if (!d.status.ok()) {
      SA_FUZZ_CHECK(!decoder.error().empty());
      break;
    }
    SA_FUZZ_CHECK(consumed <= n);
    d.consumed += consumed;
    at += n;
    if (decoder.done()) {
      SA_FUZZ_CHECK(consumed > 0 || n == 0);
      break;
    }
    SA_FUZZ_CHECK(consumed == n);
  }
  d.done = decoder.done();
  SA_FUZZ_CHECK(d.body.size() <= d.consumed || !d.status.ok());
  return d;
}

void Check(std::string_view raw) {
  Decoded whole = Decode(raw, {raw.size()});
  Decoded pieces = Decode(raw, fuzz::PieceLengths(raw));
  SA_FUZZ_CHECK(whole.status.code() == pieces.status.code());
  SA_FUZZ_CHECK(whole.status.message() == pieces.status.message());
  SA_FUZZ_CHECK(whole.done == pieces.done);
  SA_FUZZ_CHECK(whole.body == pieces.body);
  if (whole.done) SA_FUZZ_CHECK(whole.consumed == pieces.consumed);
  if (!whole.done || whole.body.empty()) return;

  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", whole.body.size());
  const std::string again = size_line + whole.body + "\r\n0\r\n\r\n";
  Decoded re = Decode(again, {again.size()});
  SA_FUZZ_CHECK(re.status.ok() && re.done && re.body == whole.body);
  SA_FUZZ_CHECK(re.consumed == again.size());
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sync_agent::Check(sync_agent::fuzz::AsText(data, size));
  return 0;
}
