#include "common/http/static_server.h"

#include <Poco/Buffer.h>
#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerResponseImpl.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timestamp.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "common/http/byteranges.h"
#include "common/http/connection_loop.h"
#include "common/http/http_client.h"
#include "common/http/http_text.h"

namespace sync_agent {
namespace {

// TLS cannot use sendfile(2); file data is encrypted in pieces of this size.
constexpr size_t kTlsPieceBytes = 256 << 10;
// sendfile(2) moves at most about 2 GiB per call.
constexpr uint64_t kSendfileMaxBytes = 1 << 30;

// Owns a file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// sendfile(2) to a peer that has gone raises SIGPIPE, which would kill the
// process unless the application ignores it. This blocks SIGPIPE for the
// calling thread and, on destruction, consumes one that arrived meanwhile and
// restores the old mask, so the server never changes process-wide state.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        timespec zero{};
        while (sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

// TCP_CORK for the length of one response: the status line, headers and the
// first file bytes share packets, and uncorking pushes the tail out at once
// instead of waiting on Nagle and the client's delayed ACK.
class ScopedCork {
 public:
  explicit ScopedCork(int fd) : fd_(fd) { Set(1); }
  ~ScopedCork() { Set(0); }
  ScopedCork(const ScopedCork&) = delete;
  ScopedCork& operator=(const ScopedCork&) = delete;

 private:
  void Set(int on) { ::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on); }
  int fd_;
};

// Writes response bodies straight to the connection's socket, after Poco has
// written the headers. Counts what it wrote.
class BodyWriter {
 public:
  explicit BodyWriter(Poco::Net::StreamSocket& socket) : socket_(socket) {}

  // False when the client went away or stopped reading for the send timeout.
  bool Write(std::string_view data) {
    try {
      while (!data.empty()) {
        int n = socket_.sendBytes(data.data(),
                                  static_cast<int>(std::min<size_t>(data.size(), INT_MAX)));
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
        bytes_ += static_cast<uint64_t>(n);
      }
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  // Sends [offset, offset + length) of file. False also when the file shrank.
  bool WriteFile(int file, uint64_t offset, uint64_t length) {
    if (socket_.secure()) return WriteFileThroughTls(file, offset, length);
    ScopedSigpipeBlock no_sigpipe;
    off_t pos = static_cast<off_t>(offset);
    while (length > 0) {
      ssize_t n = ::sendfile(socket_.impl()->sockfd(), file, &pos,
                             static_cast<size_t>(std::min(length, kSendfileMaxBytes)));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;  // EPIPE, ECONNRESET, EAGAIN after the send timeout; 0: EOF
      length -= static_cast<uint64_t>(n);
      bytes_ += static_cast<uint64_t>(n);
    }
    return true;
  }

  uint64_t bytes() const { return bytes_; }

 private:
  bool WriteFileThroughTls(int file, uint64_t offset, uint64_t length) {
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(length, kTlsPieceBytes)));
    while (length > 0) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
      ssize_t n = ::pread(file, buf.data(), want, static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      if (!Write(std::string_view(buf.data(), static_cast<size_t>(n)))) return false;
      offset += static_cast<uint64_t>(n);
      length -= static_cast<uint64_t>(n);
    }
    return true;
  }

  Poco::Net::StreamSocket& socket_;
  uint64_t bytes_ = 0;
};

// Outcome of mapping a request target to a file under the root.
struct PathCheck {
  int status = 200;  // 400, 403 or 404 when the target is refused
  std::vector<std::string> components;
};

// Decodes the path of a request target once and splits it. Encoded slashes
// become separators and encoded dots become dots before ".." is looked for,
// so no encoding smuggles a parent reference past the check.
PathCheck CheckTargetPath(std::string_view target) {
  PathCheck out;
  if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) {
    size_t slash = target.find('/', target.find("://") + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target[0] != '/') {
    out.status = 400;
    return out;
  }
  std::string decoded;
  if (!PercentDecode(target, &decoded)) {  // a malformed escape, or a NUL byte
    out.status = 400;
    return out;
  }
  size_t pos = 0;
  while (pos <= decoded.size()) {
    size_t next = decoded.find('/', pos);
    if (next == std::string::npos) next = decoded.size();
    std::string part = decoded.substr(pos, next - pos);
    if (part == "..") {
      out.status = 403;
      out.components.clear();
      return out;
    }
    if (!part.empty() && part != ".") out.components.push_back(std::move(part));
    pos = next + 1;
  }
  if (out.components.empty()) out.status = 404;  // the root directory itself
  return out;
}

// Where an open file really is, symlinks resolved.
std::optional<std::string> RealPathOfFd(int fd, const std::string& opened_path) {
  char buf[PATH_MAX + 1];
  std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, PATH_MAX);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  // No /proc: resolve the name instead (racy against concurrent renames).
  char* real = ::realpath(opened_path.c_str(), nullptr);
  if (real == nullptr) return std::nullopt;
  std::string out(real);
  std::free(real);
  return out;
}

std::string ContentTypeFor(const std::string& name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".json")) return "application/json";
  if (ends_with(".txt")) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

// Strong validator from what changes when the file is replaced or rewritten.
std::string MakeETag(const struct stat& st) {
  char buf[96];
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  std::snprintf(buf, sizeof buf, "\"%llx-%llx-%llx\"", static_cast<unsigned long long>(st.st_ino),
                static_cast<unsigned long long>(st.st_size),
                static_cast<unsigned long long>(mtime_ns));
  return buf;
}

// If-None-Match: "*" or a list of entity tags, compared weakly (RFC 9110 13.1.2).
bool NoneMatchHits(std::string_view header, const std::string& etag) {
  auto opaque = [](std::string_view tag) {
    tag = TrimWhitespace(tag);
    if (tag.rfind("W/", 0) == 0) tag.remove_prefix(2);
    return tag;
  };
  while (true) {
    size_t comma = header.find(',');
    std::string_view tag = TrimWhitespace(header.substr(0, comma));
    if (tag == "*" || (!tag.empty() && opaque(tag) == opaque(etag))) return true;
    if (comma == std::string_view::npos) return false;
    header.remove_prefix(comma + 1);
  }
}

// An HTTP date as Unix seconds; nullopt when it does not parse.
std::optional<int64_t> ParseHttpDate(const std::string& text) {
  Poco::DateTime dt;
  int tzd = 0;
  if (!Poco::DateTimeParser::tryParse(Poco::DateTimeFormat::HTTP_FORMAT, text, dt, tzd) &&
      !Poco::DateTimeParser::tryParse(Poco::DateTimeFormat::RFC850_FORMAT, text, dt, tzd) &&
      !Poco::DateTimeParser::tryParse(Poco::DateTimeFormat::ASCTIME_FORMAT, text, dt, tzd)) {
    return std::nullopt;
  }
  dt.makeUTC(tzd);
  return static_cast<int64_t>(dt.timestamp().epochTime());
}

// Appends access log lines to a file; one write(2) per line keeps concurrent
// lines whole (O_APPEND).
class AccessLogFile {
 public:
  Status Open(const std::string& path) {
    int fd;
    do {
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return PosixError("open access log " + path, errno);
    fd_ = std::make_unique<UniqueFd>(fd);
    return Status::OK();
  }
  void Append(const AccessLogEntry& e) {
    if (!fd_) return;
    std::string line = e.method + " " + e.path + " " + std::to_string(e.status) + " " +
                       std::to_string(e.body_bytes) + " " + (e.range.empty() ? "-" : e.range) +
                       "\n";
    ssize_t n;
    do {
      n = ::write(fd_->get(), line.data(), line.size());
    } while (n < 0 && errno == EINTR);
    // A failed log write must not fail the request; the log is diagnostics.
  }

 private:
  std::unique_ptr<UniqueFd> fd_;
};

// What every request handler shares; lives as long as the server runs.
struct ServerState {
  std::string root_real;  // realpath of Options::root, no trailing slash
  std::chrono::milliseconds io_timeout{0};
  std::function<void(const AccessLogEntry&)> access_log;
  AccessLogFile access_log_file;
  std::atomic<uint64_t>* requests = nullptr;    // owned by the StaticFileServer
  std::atomic<uint64_t>* body_bytes = nullptr;  // owned by the StaticFileServer
  std::atomic<uint64_t> boundary_counter{0};
  uint64_t boundary_seed = 0;
  StaticFileServer::RequestRouter router;
  bool tls = false;
  std::string host_port;  // for a request without a Host header
};

// Bodies a router may be given (a paths-info POST); larger ones get 413.
constexpr size_t kMaxRoutedBodyBytes = 1 << 20;

class FileRequestHandler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit FileRequestHandler(ServerState* state) : state_(state) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    AccessLogEntry entry;
    entry.method = request.getMethod();
    const std::string& uri = request.getURI();
    entry.path = uri.substr(0, uri.find('?'));
    entry.range = request.get("Range", "");
    try {
      entry.client = request.clientAddress().toString();
    } catch (const Poco::Exception&) {
      // A peer already gone has no address; the request fails below anyway.
    }
    try {
      Serve(request, response, &entry);
    } catch (const Poco::Exception&) {
      // The client went away mid-response; Poco closes the connection.
      response.setKeepAlive(false);
    } catch (const std::exception&) {
      response.setKeepAlive(false);
    }
    state_->requests->fetch_add(1, std::memory_order_relaxed);
    state_->body_bytes->fetch_add(entry.body_bytes, std::memory_order_relaxed);
    state_->access_log_file.Append(entry);
    if (state_->access_log) state_->access_log(entry);
  }

 private:
  using PocoStatus = Poco::Net::HTTPResponse::HTTPStatus;

  // A short text body for refusals and errors.
  static void SendMessage(Poco::Net::HTTPServerRequest& request,
                          Poco::Net::HTTPServerResponse& response, int status,
                          const std::string& text, AccessLogEntry* entry) {
    response.setStatusAndReason(static_cast<PocoStatus>(status));
    response.setContentType("text/plain; charset=utf-8");
    std::string body = text + "\n";
    response.sendBuffer(body.data(), body.size());
    entry->status = status;
    if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_HEAD) entry->body_bytes = body.size();
  }

  // Sends the headers set so far; false when the client is gone.
  static bool SendHeaders(Poco::Net::HTTPServerResponse& response) {
    std::ostream& out = response.send();
    out.flush();
    return out.good();
  }

  // Ends a response whose body could not be completed: the client must see
  // the connection close rather than wait for bytes that will not come.
  static void Abort(Poco::Net::HTTPServerResponse& response, Poco::Net::StreamSocket& socket) {
    response.setKeepAlive(false);
    try {
      socket.shutdown();
    } catch (const Poco::Exception&) {
    }
  }

  void Serve(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
             AccessLogEntry* entry) {
    const std::string& method = request.getMethod();
    const bool head = method == Poco::Net::HTTPRequest::HTTP_HEAD;
    if (state_->router && Route(request, response, entry)) return;
    if (method != Poco::Net::HTTPRequest::HTTP_GET && !head) {
      response.set("Allow", "GET, HEAD");
      // A request body we do not read would be parsed as the next request.
      response.setKeepAlive(false);
      SendMessage(request, response, 405, "method not allowed", entry);
      return;
    }
    if (request.getChunkedTransferEncoding() || request.getContentLength64() > 0) {
      response.setKeepAlive(false);  // same: the unread body ends the connection
    }

    PathCheck check = CheckTargetPath(request.getURI());
    if (check.status == 400) return SendMessage(request, response, 400, "bad path", entry);
    if (check.status == 403) return SendMessage(request, response, 403, "forbidden", entry);
    if (check.status == 404) return SendMessage(request, response, 404, "not found", entry);

    std::string path = state_->root_real;
    for (const std::string& part : check.components) path += "/" + part;
    int fd;
    do {
      // O_NONBLOCK: opening a FIFO someone left in the tree must not hang.
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      if (errno == EACCES || errno == EPERM) {
        return SendMessage(request, response, 403, "forbidden", entry);
      }
      return SendMessage(request, response, 404, "not found", entry);
    }
    UniqueFd file(fd);
    struct stat st;
    if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return SendMessage(request, response, 404, "not found", entry);
    }
    std::optional<std::string> real = RealPathOfFd(file.get(), path);
    if (!real || real->rfind(state_->root_real + "/", 0) != 0) {
      return SendMessage(request, response, 403, "forbidden", entry);
    }

    SendFile(request, response, file.get(), st, path, MakeETag(st), entry);
  }

  // Answers a request the router claims; false when it is not the router's.
  bool Route(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
             AccessLogEntry* entry) {
    RoutedRequest routed;
    routed.method = request.getMethod();
    routed.target = request.getURI();
    for (const auto& [name, value] : request) routed.headers[AsciiLower(name)] = value;
    routed.base_url =
        std::string(state_->tls ? "https://" : "http://") + request.get("Host", state_->host_port);
    const bool has_body = request.getChunkedTransferEncoding() || request.getContentLength64() > 0;
    if (has_body) {
      if (request.getContentLength64() > static_cast<Poco::Int64>(kMaxRoutedBodyBytes)) {
        response.setKeepAlive(false);
        SendMessage(request, response, 413, "request body too large", entry);
        return true;
      }
      std::istream& in = request.stream();
      char buf[16384];
      while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        routed.body.append(buf, static_cast<size_t>(in.gcount()));
        if (routed.body.size() > kMaxRoutedBodyBytes) {
          response.setKeepAlive(false);
          SendMessage(request, response, 413, "request body too large", entry);
          return true;
        }
      }
    }
    std::optional<RoutedResponse> answer = state_->router(routed);
    if (answer) {
      // Small answers, one after another on a kept-alive connection: do not
      // let Nagle's algorithm hold one back for the client's delayed ACK.
      static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().setNoDelay(true);
    }
    if (!answer) {
      if (has_body) response.setKeepAlive(false);  // the body was read; nothing to answer it
      return false;
    }
    for (const auto& [name, value] : answer->headers) response.set(name, value);
    if (!answer->file.empty()) {
      int fd;
      do {
        fd = ::open(answer->file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
      } while (fd < 0 && errno == EINTR);
      struct stat st;
      if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) ::close(fd);
        SendMessage(request, response, 404, "not found", entry);
        return true;
      }
      UniqueFd file(fd);
      SendFile(request, response, file.get(), st, answer->file,
               answer->etag.empty() ? MakeETag(st) : answer->etag, entry);
      return true;
    }
    response.setStatusAndReason(static_cast<PocoStatus>(answer->status));
    response.setContentType(answer->content_type);
    entry->status = answer->status;
    if (request.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD) {
      response.setContentLength64(static_cast<Poco::Int64>(answer->body.size()));
      SendHeaders(response);
      return true;
    }
    response.sendBuffer(answer->body.data(), answer->body.size());
    entry->body_bytes = answer->body.size();
    return true;
  }

  // Sends an open regular file: the whole of it, a range, several ranges as
  // multipart/byteranges, or 304 to a matching If-None-Match.
  void SendFile(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
                int fd, const struct stat& st, const std::string& path, const std::string& etag,
                AccessLogEntry* entry) {
    const bool head = request.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD;
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec);
    const std::string last_modified = FormatHttpDate(mtime);
    response.set("Accept-Ranges", "bytes");
    response.set("ETag", etag);
    response.set("Last-Modified", last_modified);

    // RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since.
    bool not_modified = false;
    if (request.has("If-None-Match")) {
      not_modified = NoneMatchHits(request.get("If-None-Match"), etag);
    } else if (request.has("If-Modified-Since")) {
      std::optional<int64_t> since = ParseHttpDate(request.get("If-Modified-Since"));
      if (since && *since <= static_cast<int64_t>(std::time(nullptr)) && mtime <= *since) {
        not_modified = true;
      }
    }
    if (not_modified) {
      response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NOT_MODIFIED);
      entry->status = 304;
      SendHeaders(response);
      return;
    }

    std::vector<ByteRange> ranges;
    RangeOutcome outcome = RangeOutcome::kIgnore;
    if (request.has("Range") && IfRangeHolds(request, etag, mtime)) {
      outcome = ParseRangeHeader(request.get("Range"), size, &ranges);
    }
    if (outcome == RangeOutcome::kUnsatisfiable) {
      response.set("Content-Range", "bytes */" + std::to_string(size));
      return SendMessage(request, response, 416, "range not satisfiable", entry);
    }

    Poco::Net::StreamSocket& socket =
        static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket();
    socket.setNoDelay(true);
    socket.setSendTimeout(
        Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(state_->io_timeout.count()) * 1000));
    ScopedCork cork(socket.impl()->sockfd());
    BodyWriter writer(socket);
    const std::string content_type = ContentTypeFor(path);

    if (outcome == RangeOutcome::kIgnore) {
      response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_OK);
      response.setContentType(content_type);
      response.setContentLength64(static_cast<Poco::Int64>(size));
      entry->status = 200;
      if (!SendHeaders(response)) return Abort(response, socket);
      if (!head && !writer.WriteFile(fd, 0, size)) Abort(response, socket);
      entry->body_bytes = writer.bytes();
      return;
    }

    response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_PARTIAL_CONTENT);
    entry->status = 206;
    auto content_range = [&](const ByteRange& r) {
      return ContentRange{r.offset, r.end() - 1, size}.ToString();
    };
    if (ranges.size() == 1) {
      response.setContentType(content_type);
      response.set("Content-Range", content_range(ranges[0]));
      response.setContentLength64(static_cast<Poco::Int64>(ranges[0].length));
      if (!SendHeaders(response)) return Abort(response, socket);
      if (!head && !writer.WriteFile(fd, ranges[0].offset, ranges[0].length)) {
        Abort(response, socket);
      }
      entry->body_bytes = writer.bytes();
      return;
    }

    // multipart/byteranges (RFC 9110 14.6): the length is known up front.
    const std::string boundary = NewBoundary();
    std::vector<std::string> part_headers;
    uint64_t length = 0;
    for (const ByteRange& r : ranges) {
      std::string part = "\r\n--";
      part += boundary;
      part += "\r\nContent-Type: ";
      part += content_type;
      part += "\r\nContent-Range: ";
      part += content_range(r);
      part += "\r\n\r\n";
      part_headers.push_back(std::move(part));
      length += part_headers.back().size() + r.length;
    }
    const std::string closing = "\r\n--" + boundary + "--\r\n";
    length += closing.size();
    response.setContentType("multipart/byteranges; boundary=" + boundary);
    response.setContentLength64(static_cast<Poco::Int64>(length));
    if (!SendHeaders(response)) return Abort(response, socket);
    if (!head) {
      for (size_t i = 0; i < ranges.size(); ++i) {
        if (!writer.Write(part_headers[i]) ||
            !writer.WriteFile(fd, ranges[i].offset, ranges[i].length)) {
          entry->body_bytes = writer.bytes();
          return Abort(response, socket);
        }
      }
      if (!writer.Write(closing)) Abort(response, socket);
    }
    entry->body_bytes = writer.bytes();
  }

  // If-Range (RFC 9110 13.1.5): the range applies only if the validator
  // still matches; otherwise the whole file is sent.
  static bool IfRangeHolds(Poco::Net::HTTPServerRequest& request, const std::string& etag,
                           int64_t mtime) {
    if (!request.has("If-Range")) return true;
    std::string value(TrimWhitespace(request.get("If-Range")));
    if (value.rfind('"', 0) == 0 || value.rfind("W/", 0) == 0) return value == etag;
    std::optional<int64_t> date = ParseHttpDate(value);
    return date && *date == mtime;
  }

  std::string NewBoundary() {
    uint64_t n =
        state_->boundary_seed ^
        (state_->boundary_counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ull);
    char buf[40];
    std::snprintf(buf, sizeof buf, "sync-agent-%016llx", static_cast<unsigned long long>(n));
    return buf;
  }

  ServerState* state_;
};

class FileHandlerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit FileHandlerFactory(ServerState* state) : state_(state) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new FileRequestHandler(state_);
  }

 private:
  ServerState* state_;
};

Poco::Timespan ToTimespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

// Answers the requests of a connection the ConnectionLoop has read, as
// Poco's HTTPServerConnection does, for as long as whole requests are
// buffered (a pipelining client); true when the connection stays open.
bool ServeConnection(ServerState* state, Poco::Net::HTTPServerParams::Ptr params,
                     HttpConnection& conn) {
  Poco::Net::StreamSocket& socket = conn.socket();
  socket.setReceiveTimeout(ToTimespan(state->io_timeout));
  socket.setSendTimeout(ToTimespan(state->io_timeout));
  Poco::Net::HTTPServerSession session(socket, params);
  while (true) {
    bool keep = false;
    try {
      Poco::Net::HTTPServerResponseImpl response(session);
      Poco::Net::HTTPServerRequestImpl request(response, session, params.get());
      response.setDate(Poco::Timestamp());
      response.setVersion(request.getVersion());
      response.setKeepAlive(request.getKeepAlive());
      response.set("Server", params->getSoftwareVersion());
      if (request.getExpectContinue() && response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK) {
        response.sendContinue();
      }
      FileRequestHandler handler(state);
      handler.handleRequest(request, response);
      keep = response.getKeepAlive() && response.sent();
    } catch (const Poco::Net::NoMessageException&) {
      return false;  // the client closed between requests
    } catch (const Poco::Net::MessageException&) {
      // A head Poco cannot read (a line or a field over its limits).
      try {
        Poco::Net::HTTPServerResponseImpl response(session);
        response.setVersion(Poco::Net::HTTPMessage::HTTP_1_1);
        response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
        response.setKeepAlive(false);
        response.setContentLength(0);
        response.send();
      } catch (const Poco::Exception&) {
      }
      return false;
    }
    if (!keep) return false;
    // What Poco read beyond this request is the next one's: it goes back.
    Poco::Buffer<char> rest(0);
    session.drainBuffer(rest);
    conn.Unread(rest.begin(), rest.size());
    if (!conn.HasCompleteRequest()) return true;
  }
}

}  // namespace

struct StaticFileServer::Impl {
  ServerState state;
  Poco::Net::ServerSocket listener;  // shares the socket the HTTPServer accepts on
  // Plain HTTP: the connection loop. TLS: Poco's HTTPServer and its threads.
  std::unique_ptr<ConnectionLoop> loop;
  std::unique_ptr<Poco::ThreadPool> threads;
  std::unique_ptr<Poco::Net::HTTPServer> server;
};

StaticFileServer::StaticFileServer(Options options) : options_(std::move(options)) {}

StaticFileServer::~StaticFileServer() { Stop(); }

Status StaticFileServer::Start() {
  if (impl_) return Status::InvalidArgument("static file server", "already started");
  auto impl = std::make_unique<Impl>();
  char* real = ::realpath(options_.root.c_str(), nullptr);
  if (real == nullptr) return PosixError("serve root " + options_.root, errno);
  impl->state.root_real = real;
  std::free(real);
  struct stat st;
  if (::stat(impl->state.root_real.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument("serve root " + options_.root, "not a directory");
  }
  if (impl->state.root_real == "/") impl->state.root_real.clear();  // "/" + part, not "//"
  if (options_.max_threads < 1 || options_.max_queued < 0 || options_.max_connections < 1 ||
      options_.max_connections_per_address < 0 || options_.request_timeout.count() <= 0 ||
      options_.keep_alive_timeout.count() <= 0 || options_.io_timeout.count() <= 0) {
    return Status::InvalidArgument(
        "static file server",
        "threads, max_connections and the timeouts must be positive, max_queued and "
        "max_connections_per_address not negative");
  }
  impl->state.io_timeout = options_.io_timeout;
  impl->state.requests = &requests_;
  impl->state.body_bytes = &body_bytes_;
  impl->state.access_log = options_.access_log;
  impl->state.boundary_seed = std::random_device{}();
  impl->state.boundary_seed = (impl->state.boundary_seed << 32) ^ std::random_device{}();
  if (!options_.access_log_path.empty()) {
    SA_RETURN_IF_ERROR(impl->state.access_log_file.Open(options_.access_log_path));
  }

  const std::string address =
      (options_.host.find(':') != std::string::npos ? "[" + options_.host + "]" : options_.host) +
      ":" + std::to_string(options_.port);
  const bool tls = !options_.tls_cert_file.empty() || !options_.tls_key_file.empty();
  std::unique_ptr<Poco::Net::ServerSocket> socket;
  if (tls) {
    if (options_.tls_cert_file.empty() || options_.tls_key_file.empty()) {
      return Status::InvalidArgument("serve over TLS", "needs both a certificate and a key file");
    }
    try {
      static std::once_flag ssl_once;
      std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
      Poco::Net::Context::Params params;
      params.certificateFile = options_.tls_cert_file;
      params.privateKeyFile = options_.tls_key_file;
      params.verificationMode = Poco::Net::Context::VERIFY_NONE;  // no client certificates
      Poco::Net::Context::Ptr context =
          new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
      socket = std::make_unique<Poco::Net::SecureServerSocket>(context);
    } catch (const Poco::Exception& e) {
      return Status::InvalidArgument(
          "TLS certificate " + options_.tls_cert_file + " / key " + options_.tls_key_file,
          e.displayText());
    }
  } else {
    socket = std::make_unique<Poco::Net::ServerSocket>();
  }
  try {
    // SO_REUSEADDR only: Poco's two-argument bind() also sets SO_REUSEPORT,
    // which would let a second server share a port that is in use.
    socket->bind(Poco::Net::SocketAddress(options_.host, static_cast<uint16_t>(options_.port)),
                 /*reuseAddress=*/true, /*reusePort=*/false);
    // Room for a burst of connects while the loop accepts (nginx's 511).
    socket->listen(std::max(511, options_.max_queued));
  } catch (const Poco::Exception& e) {
    std::string detail = e.code() != 0 ? std::strerror(e.code()) : e.displayText();
    if (e.code() == EADDRINUSE) detail = "address already in use";
    return Status::Network("listen on " + address, detail);
  }
  port_.store(socket->address().port());
  impl->state.router = options_.router;
  impl->state.tls = tls;
  impl->state.host_port = options_.host + ":" + std::to_string(port_.load());

  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(options_.max_threads);
  params->setMaxQueued(options_.max_queued);
  params->setTimeout(ToTimespan(options_.io_timeout));
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(ToTimespan(options_.keep_alive_timeout));
  params->setMaxKeepAliveRequests(0);  // unlimited
  params->setSoftwareVersion("sync-agent/" SA_VERSION);
  if (!tls) {
    ConnectionLoop::Limits limits;
    limits.max_threads = options_.max_threads;
    limits.max_queued = options_.max_queued;
    limits.max_connections = options_.max_connections;
    limits.max_connections_per_address = options_.max_connections_per_address;
    limits.request_timeout = options_.request_timeout;
    limits.keep_alive_timeout = options_.keep_alive_timeout;
    limits.max_connections_key = "serve_max_connections, --max-connections";
    limits.max_connections_per_address_key =
        "serve_max_connections_per_address, --max-connections-per-address";
    limits.request_timeout_key = "serve_request_timeout, --request-timeout";
    ServerState* state = &impl->state;
    impl->loop = std::make_unique<ConnectionLoop>(
        socket->impl()->sockfd(), limits,
        [state, params](HttpConnection& conn) { return ServeConnection(state, params, conn); });
    Status started = impl->loop->Start();
    if (!started.ok()) {
      port_.store(0);
      return Status::Network("start HTTP server on " + address, started.ToString());
    }
    impl->listener = *socket;
    std::lock_guard<std::mutex> lock(stats_mu_);
    impl_ = std::move(impl);
    return Status::OK();
  }
  try {
    impl->threads = std::make_unique<Poco::ThreadPool>(2, std::max(2, options_.max_threads));
    impl->server = std::make_unique<Poco::Net::HTTPServer>(new FileHandlerFactory(&impl->state),
                                                           *impl->threads, *socket, params);
    impl->server->start();
    impl->listener = *socket;
  } catch (const Poco::Exception& e) {
    port_.store(0);
    return Status::Network("start HTTP server on " + address, e.displayText());
  }
  std::lock_guard<std::mutex> lock(stats_mu_);
  impl_ = std::move(impl);
  return Status::OK();
}

void StaticFileServer::Stop() {
  if (!impl_) return;
  if (impl_->loop) {
    impl_->loop->Stop();
    std::lock_guard<std::mutex> lock(stats_mu_);
    ConnectionLoop::Stats last = impl_->loop->stats();
    refused_before_ += last.refused_connections;
    timed_out_before_ += last.timed_out_requests;
    impl_.reset();
    port_.store(0);
    return;
  }
  try {
    // Poco's acceptor polls the listening socket every 250 ms; shutting it
    // down wakes it at once (the failed accept is handled inside Poco).
    ::shutdown(impl_->listener.impl()->sockfd(), SHUT_RDWR);
    // Stops accepting and shuts down the sockets of connections in progress,
    // which wakes handlers blocked in sendfile or in a keep-alive wait.
    impl_->server->stopAll(/*abortCurrent=*/true);
    impl_->threads->joinAll();
  } catch (const Poco::Exception&) {
    // Nothing left to do: the threads are being torn down either way.
  }
  impl_->server.reset();
  impl_->threads.reset();
  std::lock_guard<std::mutex> lock(stats_mu_);
  impl_.reset();
  port_.store(0);
}

std::string StaticFileServer::url() const {
  bool tls = !options_.tls_cert_file.empty();
  std::string host =
      options_.host.find(':') != std::string::npos ? "[" + options_.host + "]" : options_.host;
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port());
}

StaticFileServer::Stats StaticFileServer::stats() const {
  Stats s;
  s.requests = requests_.load();
  s.body_bytes = body_bytes_.load();
  std::lock_guard<std::mutex> lock(stats_mu_);
  s.refused_connections = refused_before_;
  s.timed_out_requests = timed_out_before_;
  if (impl_ && impl_->loop) {
    ConnectionLoop::Stats loop = impl_->loop->stats();
    s.open_connections = loop.open_connections;
    s.refused_connections += loop.refused_connections;
    s.timed_out_requests += loop.timed_out_requests;
  }
  return s;
}

}  // namespace sync_agent
