#include "common/source/source.h"

namespace sync_agent {

ContentRef ContentOf(const Manifest& manifest, const ManifestEntry& entry) {
  return {entry.sha256, entry.size, manifest.revision, entry.path, entry.provenance};
}

Status Source::FetchSignature(const std::string& content_sha256, const SignatureRef& /*signature*/,
                              ObjectSink* /*sink*/) {
  return Status::Unsupported("signature of " + content_sha256 + " from " + url(),
                             "this kind of source publishes no signatures");
}

Status Source::FetchDelta(const std::string& to_sha256, const DeltaRef& delta,
                          ObjectSink* /*sink*/) {
  return Status::Unsupported("delta " + delta.from_sha256 + " -> " + to_sha256 + " from " + url(),
                             "this kind of source publishes no deltas");
}

std::string Source::SignatureLocation(const std::string& content_sha256,
                                      const SignatureRef& /*signature*/) const {
  return url() + " (signature of " + content_sha256 + ")";
}

std::string Source::DeltaLocation(const std::string& to_sha256, const DeltaRef& delta) const {
  return url() + " (delta " + delta.from_sha256 + " -> " + to_sha256 + ")";
}

Result<std::optional<std::string>> Source::FetchRevisionSignatures(const PollResult& poll) {
  return Status::Unsupported("signatures of revision " + poll.revision + " from " + url(),
                             "this kind of source carries no revision signatures");
}

std::string Source::RevisionSignaturesLocation(const std::string& revision) const {
  return url() + " (signatures of revision " + revision + ")";
}

HttpClientOptions HttpOptionsFor(const SourceOptions& options) {
  HttpClientOptions h;
  h.io_timeout = options.io_timeout;
  h.low_speed_limit = options.low_speed_limit;
  h.low_speed_time = options.low_speed_time;
  h.ca_file = options.ca_file;
  h.limiter = options.limiter;
  h.shared = options.connections;
  return h;
}

}  // namespace sync_agent
