// LfsClient: downloads Git LFS objects of a remote through the Git LFS batch
// API (docs/api/batch.md of git-lfs: POST <lfs>/objects/batch, "basic"
// transfer), following each object's download href with the headers the
// server returns. Used by git sources (issue 4); objects are verified by the
// caller (ObjectDownload checks sha256 and size).
//
// Thread safety: one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/base/byte_range.h"
#include "common/base/status.h"
#include "common/http/http_client.h"

namespace sync_agent {

class ObjectSink;

struct LfsObject {
  std::string oid;  // sha256 hex
  uint64_t size = 0;
};

// Where and how to download one object, as the batch response says.
struct LfsDownload {
  std::string href;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The LFS endpoint of a git remote URL: "<url>/info/lfs" when the URL ends
// in ".git", else "<url>.git/info/lfs" (the git-lfs convention).
std::string LfsEndpoint(const std::string& git_url);

class LfsClient {
 public:
  // headers (for example Authorization) go with the batch request only;
  // downloads carry what the server returned for them.
  LfsClient(std::string git_url, HttpClientOptions options,
            std::vector<std::pair<std::string, std::string>> headers = {});

  // Asks for download actions of objects. The result has one entry per
  // object, in the same order: the action, or the error the server gave for
  // that object (404 is kNotFound "... missing on the LFS server", others
  // kNetwork with the server's code and message). The call itself fails on
  // transport errors, non-200 answers and malformed JSON.
  Result<std::vector<Result<LfsDownload>>> Batch(const std::vector<LfsObject>& objects);

  // Streams one object from offset to its end into sink (a Range request when
  // offset > 0; Begin(offset) when the server honours it, Begin(0) when it
  // sends the whole object). A 200 with another size than the object's is
  // kCorruption.
  Status Download(const LfsObject& object, const LfsDownload& action, uint64_t offset,
                  ObjectSink* sink);

  // Streams bytes [range.offset, range.end()) of one object into sink with a
  // Range request. A server that answers 200 (no range support) is
  // kUnsupported before its body is read.
  Status DownloadRange(const LfsObject& object, const LfsDownload& action, ByteRange range,
                       const std::function<Status(uint64_t, const char*, size_t)>& sink);

  const std::string& endpoint() const { return endpoint_; }

 private:
  std::string endpoint_;
  std::vector<std::pair<std::string, std::string>> headers_;
  HttpClient client_;
};

}  // namespace sync_agent
