// A Git LFS server for tests, on Poco's HTTP server, following the public
// batch API (git-lfs docs/api/batch.md) with the "basic" transfer:
//
//   POST /<anything>/info/lfs/objects/batch   download actions for the objects
//   GET  /objects/<oid>                        an object's bytes (403 without the
//                                              X-Download-Token the batch gave);
//                                              "Range: bytes=N-" is honoured
//
// Objects are added by the test. Faults on demand: an object missing (error
// 404 in the batch answer, or a 404 on its download), wrong bytes served for
// an oid, the whole batch answered with an HTTP error, an authorization
// header required. Listens on 127.0.0.1, port chosen by the kernel.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sync_agent::testing {

class LfsServer {
 public:
  LfsServer();
  ~LfsServer();
  LfsServer(const LfsServer&) = delete;
  LfsServer& operator=(const LfsServer&) = delete;

  std::string url() const;  // "http://127.0.0.1:<port>"
  // Stores content under its sha256; returns the oid.
  std::string Add(const std::string& content);

  // Faults.
  void MissingInBatch(const std::string& oid);     // batch says error 404
  void MissingOnDownload(const std::string& oid);  // batch offers it, GET is 404
  void ServeWrongBytes(const std::string& oid);    // GET sends other bytes of the same size
  void FailBatch(int http_status);                 // every batch request gets this status
  void RequireAuthorization(const std::string& value);
  // The next download of oid sends only its first n bytes, then closes the
  // connection (a dropped link); later downloads are whole again.
  void CutOffNextDownload(const std::string& oid, size_t n);

  // Requests seen, as "POST /path" or "GET /path", with " Range: <value>"
  // appended to a download that asked for a range (served as a 206).
  std::vector<std::string> requests() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

}  // namespace sync_agent::testing
