// The revision signature document (common/manifest ParseRevisionSignatures)
// and its check (common/trust VerifyRevisionSignatures). Invariants: a
// document that parses serializes to one that parses to the same fields;
// no input is ever accepted as signed by a key made in this process (the
// fuzzer cannot forge ed25519), and every refusal is one of the documented
// codes.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/manifest/manifest.h"
#include "common/trust/revision_trust.h"
#include "tests/fuzz/fuzz_util.h"

namespace sync_agent {
namespace {

const PrivateKey& Key() {
  static const PrivateKey key = [] {
    auto k = PrivateKey::Generate();
    if (!k.ok()) __builtin_trap();
    return std::move(k).value();
  }();
  return key;
}

void Check(std::string_view text) {
  auto parsed = ParseRevisionSignatures(text);
  if (parsed.ok()) {
    auto again = ParseRevisionSignatures(SerializeRevisionSignatures(*parsed));
    SA_FUZZ_CHECK(again.ok());
    SA_FUZZ_CHECK(again->repo == parsed->repo && again->revision == parsed->revision &&
                  again->manifest_sha256 == parsed->manifest_sha256 &&
                  again->created == parsed->created &&
                  again->signatures.size() == parsed->signatures.size());
    SA_FUZZ_CHECK(parsed->signatures.size() <= kMaxRevisionSignatures);
  } else {
    SA_FUZZ_CHECK(parsed.status().code() == Status::Code::kInvalidArgument ||
                  parsed.status().code() == Status::Code::kUnsupported);
  }
  // Checked against the statement it claims, as a node would.
  RevisionStatement statement;
  if (parsed.ok()) {
    statement = {parsed->repo, parsed->revision, parsed->manifest_sha256, parsed->created};
  } else {
    statement = {"acme/llm-7b", "r1", std::string(64, 'a'), "2026-12-02T13:05:01Z"};
  }
  auto verdict = VerifyRevisionSignatures(std::string(text), statement, {Key().public_key()},
                                          "fuzz/revisions/r.sig");
  SA_FUZZ_CHECK(!verdict.ok());
  Status::Code code = verdict.status().code();
  SA_FUZZ_CHECK(code == Status::Code::kNotFound || code == Status::Code::kCorruption ||
                code == Status::Code::kInvalidArgument || code == Status::Code::kUnsupported);
}

}  // namespace
}  // namespace sync_agent

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sync_agent::Check(sync_agent::fuzz::AsText(data, size));
  return 0;
}
