#include "common/http/http_client.h"

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/InvalidCertificateHandler.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/VerificationErrorArgs.h>
#include <Poco/Net/X509Certificate.h>
#include <Poco/Timespan.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <ctime>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>

#include "common/bandwidth/rate_limiter.h"
#include "common/base/json_text.h"
#include "common/base/time_util.h"
#include "common/http/byteranges.h"
#include "common/http/chunked_decoder.h"
#include "common/http/http_text.h"
#include "common/http/transfer_watch.h"

namespace sync_agent {
namespace {

using Clock = std::chrono::steady_clock;

// For a header sent as several values ("5, 6" or two lines merged so): the
// distinct values joined by " and ", or "" when they all agree.
std::string ConflictingListValues(std::string_view merged) {
  std::string_view first = TrimWhitespace(merged.substr(0, merged.find(',')));
  for (size_t comma = merged.find(','); comma != std::string_view::npos;) {
    size_t next = merged.find(',', comma + 1);
    std::string_view v = TrimWhitespace(merged.substr(comma + 1, next - comma - 1));
    if (v != first) return std::string(first) + " and " + std::string(v);
    comma = next;
  }
  return "";
}

std::string MethodName(const HttpRequest& request) {
  if (request.post_body) return "POST";
  return request.head ? "HEAD" : "GET";
}

// The sink receives the body in pieces of up to this size.
constexpr size_t kBodyPieceBytes = 1 << 20;
constexpr int64_t kSmallBodyPieceBytes = 16 << 10;
// Chunked bodies are read from the socket this much at a time before decoding.
constexpr size_t kRawReadBytes = 256 << 10;
// Largest read while a bandwidth cap is in force.
constexpr size_t kLimitedReadBytes = 64 << 10;
// Bodies of responses the caller does not stream (errors, redirects) are read
// and dropped up to this size so the connection can serve the next request;
// longer ones cost a reconnect instead.
constexpr uint64_t kDrainLimitBytes = 64 << 10;
// A read waits for bytes this long at a time before the stop flag and the
// limits of the request are looked at again.
constexpr std::chrono::milliseconds kWaitSlice{100};
// A response head longer than this, or with more lines, is refused: an
// endless header would otherwise be read for as long as the server sends it.
constexpr size_t kMaxResponseHeadBytes = 64 << 10;
constexpr size_t kMaxResponseHeadLines = 100;
// The body of a response the caller does not stream (an error, a redirect)
// is read for at most this long; past it the connection is dropped instead.
constexpr std::chrono::milliseconds kDrainTime{2000};
// How long an idle pooled connection is kept. Servers close idle connections
// on their own schedule; a closed one is noticed before reuse (EOF poll) or,
// in a race, by the retry on a fresh connection.
constexpr int64_t kPoolIdleSeconds = 300;
// Connections kept to distinct origins; beyond this an idle one is dropped.
constexpr size_t kMaxPooledOrigins = 8;

// Whether a socket has bytes or EOF to read now. One poll(2): Poco's
// Socket::poll makes and closes an epoll instance for every call, three
// system calls per request in a pass over thousands of repositories.
bool ReadableNow(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

Poco::Timespan ToTimespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

bool Cancelled(const CancelFlag* cancel) { return cancel != nullptr && cancel->load(); }

// An absolute http(s) URL split into what a connection and a request line need.
struct ParsedUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // IPv6 literals without brackets
  uint16_t port = 0;
  std::string target;  // path and query, starting with '/'; the fragment is dropped

  // "scheme://host:port": the key of the connection pool and the base of absolute paths.
  std::string Origin() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return scheme + "://" + h + ":" + std::to_string(port);
  }
};

// Parses http://host[:port][/path][?query][#fragment]. Userinfo is rejected
// (credentials do not belong in URLs that end up in logs), and so are spaces
// and control characters, which would corrupt the request line.
Result<ParsedUrl> ParseUrl(const std::string& url) {
  auto bad = [&](std::string_view why) { return Status::InvalidArgument("URL " + url, why); };
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) return bad("contains a space or control character");
  }
  size_t sep = url.find("://");
  if (sep == std::string::npos) return bad("not an absolute http:// or https:// URL");
  ParsedUrl out;
  out.scheme = AsciiLower(url.substr(0, sep));
  if (out.scheme != "http" && out.scheme != "https") {
    return bad("unsupported scheme '" + out.scheme + "' (http and https are)");
  }
  size_t auth_begin = sep + 3;
  size_t auth_end = url.find_first_of("/?#", auth_begin);
  if (auth_end == std::string::npos) auth_end = url.size();
  std::string authority = url.substr(auth_begin, auth_end - auth_begin);
  if (authority.find('@') != std::string::npos) return bad("user:password@ is not supported");
  std::string port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string::npos) return bad("unterminated IPv6 address");
    out.host = authority.substr(1, close - 1);
    std::string rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("garbage after IPv6 address");
      port_text = rest.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  out.port = out.scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !std::all_of(port_text.begin(), port_text.end(),
                                             [](char c) { return c >= '0' && c <= '9'; })) {
      return bad("bad port '" + port_text + "'");
    }
    int port = std::stoi(port_text);
    if (port < 1 || port > 65535) return bad("port out of range");
    out.port = static_cast<uint16_t>(port);
  }
  std::string target = url.substr(auth_end);
  target = target.substr(0, target.find('#'));
  if (target.empty() || target[0] != '/') target = "/" + target;
  out.target = target;
  return out;
}

// RFC 3986 5.2.4 on a path (no query).
std::string RemoveDotSegments(const std::string& path) {
  std::vector<std::string> segments;
  size_t pos = 1;  // path starts with '/'
  bool trailing_slash = false;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    std::string seg = path.substr(pos, next - pos);
    trailing_slash = false;
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = true;
    } else if (seg == ".") {
      trailing_slash = true;
    } else {
      segments.push_back(seg);
    }
    pos = next + 1;
  }
  std::string out;
  for (const std::string& seg : segments) out += "/" + seg;
  if (trailing_slash || out.empty()) out += "/";
  return out;
}

// Resolves a Location header value against the URL that returned it.
std::string ResolveLocation(const ParsedUrl& base, const std::string& location) {
  size_t colon = location.find(':');
  size_t first_delim = location.find_first_of("/?#");
  if (colon != std::string::npos && colon > 0 && colon < first_delim &&
      std::isalpha(static_cast<unsigned char>(location[0]))) {
    return location;  // absolute
  }
  if (location.rfind("//", 0) == 0) return base.scheme + ":" + location;
  std::string base_path = base.target.substr(0, base.target.find('?'));
  std::string ref = location.substr(0, location.find('#'));
  if (ref.empty()) return base.Origin() + base.target;
  if (ref[0] == '?') return base.Origin() + base_path + ref;
  size_t query = ref.find('?');
  std::string ref_path = ref.substr(0, query);
  std::string ref_query = query == std::string::npos ? "" : ref.substr(query);
  if (ref_path[0] != '/') ref_path = base_path.substr(0, base_path.rfind('/') + 1) + ref_path;
  return base.Origin() + RemoveDotSegments(ref_path) + ref_query;
}

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Content-Range: "bytes 0-99/1000", "bytes 0-99/*" (206) or "bytes */1000" (416).
void SetContentRange(std::string_view value, HttpResponse* response) {
  std::optional<ContentRange> range = ParseContentRange(value);
  if (!range) return;
  response->range_first = range->first;
  response->range_last = range->last;
  response->range_total = range->total;
}

// Poco keeps HTTPSession::read() protected. It hands out whatever the header
// parser had already buffered and otherwise receives straight into the
// caller's buffer, so a 1 MiB read costs a few recv() calls; Poco's body
// istreams would refill through a 4 KiB buffer instead.
template <typename Session>
class DirectReadSession final : public Session {
 public:
  using Session::read;
  using Session::Session;
};

template <typename Session>
int ReadDirect(Poco::Net::HTTPClientSession& session, char* buf, std::streamsize n) {
  return static_cast<DirectReadSession<Session>&>(session).read(buf, n);
}

// One kept-alive connection to an origin.
struct Connection {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  int (*read)(Poco::Net::HTTPClientSession&, char*, std::streamsize) = nullptr;
  RateLimiter* limiter = nullptr;  // the agent's bandwidth cap, if any
  // Bytes received past the response head, handed out before the socket's.
  std::string pending;

  // Reads up to n bytes into buf (*got: 0 at the end of the stream). The
  // socket waits kWaitSlice at a time, and watch is consulted between waits,
  // so a stop or a limit acts even while the server sends nothing. Throws
  // Poco exceptions from the socket other than its timeout.
  Status Read(char* buf, size_t n, TransferWatch* watch, int* got) {
    if (!pending.empty()) {
      SA_RETURN_IF_ERROR(watch->Check(Clock::now()));
      size_t take = std::min(n, pending.size());
      std::memcpy(buf, pending.data(), take);
      pending.erase(0, take);
      *got = static_cast<int>(take);
      return Status::OK();
    }
    // Under a cap, small reads keep the pacing smooth.
    if (limiter != nullptr) n = std::min(n, kLimitedReadBytes);
    while (true) {
      SA_RETURN_IF_ERROR(watch->Check(Clock::now()));
      try {
        *got = read(*session, buf, static_cast<std::streamsize>(n));
        break;
      } catch (const Poco::TimeoutException&) {
        // A slice without bytes: look at the watch again.
      }
    }
    if (*got > 0) {
      watch->Received(static_cast<size_t>(*got), Clock::now());
      if (limiter != nullptr) {
        auto before = Clock::now();
        limiter->Acquire(static_cast<size_t>(*got), watch->cancel());
        auto after = Clock::now();
        watch->Paused(after - before, after);
      }
    }
    return Status::OK();
  }
  // Drops the socket; the next request connects afresh.
  void Close() {
    pending.clear();
    try {
      session->reset();
    } catch (...) {  // closing a broken socket may throw; it is gone either way
    }
  }
};

}  // namespace

struct SharedConnections::Impl {
  mutable std::mutex mu;
  size_t max_idle = 0;
  size_t count = 0;                                     // guarded by mu
  std::map<std::string, std::vector<Connection>> idle;  // guarded by mu; by ShareKey
  std::atomic<uint64_t> opened{0};
};

namespace {

// Gathers body bytes into pieces of up to kBodyPieceBytes for the sink (or
// drops them when there is no sink). Once the sink fails it is not called again.
class PieceBuffer {
 public:
  PieceBuffer(std::vector<char>* buf, const BodySink* sink) : buf_(*buf), sink_(sink) {}

  // Where the next bytes can be read to, and how many fit.
  char* tail() { return buf_.data() + fill_; }
  size_t room() const { return buf_.size() - fill_; }
  // n bytes were written at tail(); hands the piece over when it is full.
  Status Commit(size_t n) {
    fill_ += n;
    return fill_ == buf_.size() ? Flush() : Status::OK();
  }
  Status Append(const char* data, size_t n) {
    while (n > 0) {
      size_t take = std::min(n, room());
      std::memcpy(tail(), data, take);
      data += take;
      n -= take;
      SA_RETURN_IF_ERROR(Commit(take));
    }
    return Status::OK();
  }
  Status Flush() {
    size_t n = fill_;
    fill_ = 0;
    if (n == 0 || sink_ == nullptr || sink_failed_) return Status::OK();
    Status st = (*sink_)(buf_.data(), n);
    sink_failed_ = !st.ok();
    return st;
  }
  bool sink_failed() const { return sink_failed_; }

 private:
  std::vector<char>& buf_;
  const BodySink* sink_;
  size_t fill_ = 0;
  bool sink_failed_ = false;
};

// Why OpenSSL last rejected a server certificate on this thread. OpenSSL's
// own error only says "certificate verify failed"; the verification callback
// knows the reason ("self-signed certificate", "certificate has expired").
thread_local std::string last_certificate_error;

// Rejects every certificate OpenSSL could not verify (never prompts, unlike
// Poco's console handler) and records why. Runs on the handshaking thread.
class RecordingCertificateHandler final : public Poco::Net::InvalidCertificateHandler {
 public:
  RecordingCertificateHandler() : InvalidCertificateHandler(/*handleErrorsOnServerSide=*/false) {}
  void onInvalidCertificate(const void*, Poco::Net::VerificationErrorArgs& args) override {
    last_certificate_error = args.errorMessage();
    try {
      last_certificate_error += " (subject " + args.certificate().subjectName() + ")";
    } catch (const Poco::Exception&) {  // the reason alone will do
    }
    args.setIgnoreError(false);
  }
};

// Where a failure happened, for the message.
enum class Phase { kConnect, kSend, kReceive, kBody };

// A human message for a transport exception.
std::string DescribeException(const Poco::Exception& e, Phase phase,
                              const HttpClientOptions& options) {
  using namespace Poco::Net;
  if (dynamic_cast<const SSLException*>(&e) != nullptr) {
    std::string text = e.message().empty() ? e.displayText() : e.message();
    if (dynamic_cast<const CertificateValidationException*>(&e) != nullptr ||
        text.find("certificate verify failed") != std::string::npos) {
      return "certificate verification failed: " +
             (last_certificate_error.empty() ? text : last_certificate_error);
    }
    return "TLS error: " + text;
  }
  if (dynamic_cast<const Poco::TimeoutException*>(&e) != nullptr) {
    if (phase == Phase::kConnect) {
      return "connect timed out after " + FormatDuration(options.connect_timeout);
    }
    return "timed out after " + FormatDuration(options.io_timeout) + " without data";
  }
  if (dynamic_cast<const ConnectionRefusedException*>(&e) != nullptr) return "connection refused";
  if (dynamic_cast<const ConnectionResetException*>(&e) != nullptr) {
    return "connection reset by peer";
  }
  if (dynamic_cast<const ConnectionAbortedException*>(&e) != nullptr) return "connection aborted";
  if (dynamic_cast<const NoMessageException*>(&e) != nullptr) {
    return "connection closed before a response arrived";
  }
  if (dynamic_cast<const MessageException*>(&e) != nullptr) {
    return "malformed HTTP response: " + e.message();
  }
  if (dynamic_cast<const DNSException*>(&e) != nullptr) {
    return "cannot resolve host: " + e.displayText();
  }
  return e.displayText();
}

// Timeouts mean the peer is slow or gone; resending on a fresh connection
// would only double the wait.
bool RetryableOnFreshConnection(const Poco::Exception& e) {
  return dynamic_cast<const Poco::TimeoutException*>(&e) == nullptr;
}

}  // namespace

struct HttpClient::Impl {
  explicit Impl(HttpClientOptions o) : options(std::move(o)) {}

  Result<Connection*> GetConnection(const ParsedUrl& url);
  Result<Poco::Net::Context::Ptr> TlsContext();

  // The limits of one request, from the options and the request.
  TransferLimits Limits(const HttpRequest& request,
                        std::optional<Clock::time_point> deadline) const;

  // One request/response on one URL; redirects are reported in *location
  // (resolved) and not followed here. deadline: the whole request's, if any.
  Status Exchange(const HttpRequest& request, const std::string& url, bool same_origin,
                  std::optional<Clock::time_point> deadline, const BodySink& sink,
                  HttpResponse* response, std::string* location);

  // Reads the status line and headers into *resp, skipping 1xx answers;
  // bytes after the head stay in conn.pending for the body. A head longer
  // than kMaxResponseHeadBytes or kMaxResponseHeadLines is refused.
  // *nothing_arrived tells that the connection ended before any byte.
  Status ReadHead(Connection& conn, TransferWatch* watch, const std::string& ctx,
                  Poco::Net::HTTPResponse* resp, bool* nothing_arrived);

  // Reads a body whose framing the response headers gave. Up to max_bytes go
  // to sink (or are dropped when sink is null); *complete tells whether the
  // whole body was read, which the connection's reuse depends on. Throws Poco
  // exceptions from the socket; *received counts bytes so far for messages.
  // Whatever arrived before a failure (truncation, timeout, cancellation) has
  // been given to the sink when this returns or throws.
  Status ReadBody(Connection& conn, const Poco::Net::HTTPResponse& resp, bool has_body,
                  const BodySink* sink, uint64_t max_bytes, TransferWatch* watch,
                  const std::string& ctx, bool* complete, uint64_t* received);
  // ReadBody's loop for each kind of framing; bytes go through *pieces.
  Status ReadFramedBody(Connection& conn, const Poco::Net::HTTPResponse& resp, PieceBuffer* pieces,
                        uint64_t max_bytes, TransferWatch* watch, const std::string& ctx,
                        bool* complete, uint64_t* received);

  ~Impl() {
    while (!pool.empty()) ReturnToShared(pool.begin());
  }
  // Connections are shared only between clients with the same TLS settings.
  std::string ShareKey(const std::string& origin) const { return origin + " " + options.ca_file; }
  // Hands a kept-alive connection on to options.shared (or closes it) and
  // removes it from pool.
  void ReturnToShared(std::map<std::string, Connection>::iterator it);

  HttpClientOptions options;
  Poco::Net::Context::Ptr tls;
  std::map<std::string, Connection> pool;  // by ParsedUrl::Origin()
  std::vector<char> body_buf;
  std::vector<char> raw_buf;
};

Result<Poco::Net::Context::Ptr> HttpClient::Impl::TlsContext() {
  if (!tls.isNull()) return tls;
  static std::once_flag ssl_once;
  std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
  const std::string ctx = options.ca_file.empty() ? "TLS setup with the system CA store"
                                                  : "TLS CA file " + options.ca_file;
  try {
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;  // the server's chain is checked
    params.loadDefaultCAs = options.ca_file.empty();
    params.caLocation = options.ca_file;
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    context->setInvalidCertificateHandler(new RecordingCertificateHandler());
    tls = context;
    return tls;
  } catch (const Poco::Exception& e) {
    return Status::InvalidArgument(ctx, e.displayText());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(ctx, e.what());
  }
}

void HttpClient::Impl::ReturnToShared(std::map<std::string, Connection>::iterator it) {
  Connection conn = std::move(it->second);
  const std::string key = ShareKey(it->first);
  pool.erase(it);
  // Only a connection that is open, between requests, with nothing unread.
  bool reusable = options.shared != nullptr && conn.session && conn.pending.empty();
  try {
    reusable = reusable && conn.session->connected();
  } catch (...) {
    reusable = false;
  }
  if (reusable) {
    SharedConnections::Impl& shared = *options.shared->impl_;
    std::lock_guard<std::mutex> lock(shared.mu);
    if (shared.count < shared.max_idle) {
      conn.limiter = nullptr;
      shared.idle[key].push_back(std::move(conn));
      ++shared.count;
      return;
    }
  }
  if (conn.session) conn.Close();
}

Result<Connection*> HttpClient::Impl::GetConnection(const ParsedUrl& url) {
  std::string key = url.Origin();
  auto it = pool.find(key);
  if (it != pool.end()) return &it->second;
  // One request runs at a time, so every pooled connection is idle here.
  if (pool.size() >= kMaxPooledOrigins) ReturnToShared(pool.begin());
  if (options.shared != nullptr) {
    SharedConnections::Impl& shared = *options.shared->impl_;
    std::lock_guard<std::mutex> lock(shared.mu);
    auto it = shared.idle.find(ShareKey(key));
    if (it != shared.idle.end() && !it->second.empty()) {
      Connection conn = std::move(it->second.back());
      it->second.pop_back();
      --shared.count;
      // This client's cap and timeouts, not the last one's.
      conn.limiter = options.limiter;
      conn.session->setTimeout(ToTimespan(options.connect_timeout), ToTimespan(options.io_timeout),
                               ToTimespan(options.io_timeout));
      return &pool.emplace(key, std::move(conn)).first->second;
    }
  }
  if (options.shared != nullptr) options.shared->impl_->opened.fetch_add(1);
  Connection conn;
  try {
    if (url.scheme == "https") {
      SA_ASSIGN_OR_RETURN(Poco::Net::Context::Ptr context, TlsContext());
      conn.session = std::make_unique<DirectReadSession<Poco::Net::HTTPSClientSession>>(
          url.host, url.port, context);
      conn.read = &ReadDirect<Poco::Net::HTTPSClientSession>;
    } else {
      conn.session =
          std::make_unique<DirectReadSession<Poco::Net::HTTPClientSession>>(url.host, url.port);
      conn.read = &ReadDirect<Poco::Net::HTTPClientSession>;
    }
  } catch (const Poco::Exception& e) {
    return Status::Network("connect to " + key, e.displayText());
  }
  conn.session->setKeepAlive(true);
  conn.session->setKeepAliveTimeout(Poco::Timespan(kPoolIdleSeconds, 0));
  conn.limiter = options.limiter;
  conn.session->setTimeout(ToTimespan(options.connect_timeout), ToTimespan(options.io_timeout),
                           ToTimespan(options.io_timeout));
  return &pool.emplace(key, std::move(conn)).first->second;
}

TransferLimits HttpClient::Impl::Limits(const HttpRequest& request,
                                        std::optional<Clock::time_point> deadline) const {
  TransferLimits limits;
  limits.stall_timeout = options.io_timeout;
  limits.head_timeout = options.io_timeout;
  limits.low_speed_bytes_per_second = options.low_speed_limit;
  limits.low_speed_time = options.low_speed_time;
  limits.deadline = deadline;
  if (request.deadline) {
    limits.deadline_what = FormatDuration(*request.deadline) + ", the time this request may take";
  }
  return limits;
}

Status HttpClient::Impl::ReadHead(Connection& conn, TransferWatch* watch, const std::string& ctx,
                                  Poco::Net::HTTPResponse* resp, bool* nothing_arrived) {
  *nothing_arrived = false;
  std::string head = std::move(conn.pending);
  conn.pending.clear();
  bool any = !head.empty();
  size_t line_start = 0;  // where the next line to look at begins
  size_t lines = 0;       // lines of the head so far, blank ones before it not counted
  char buf[8192];
  while (true) {
    // The head ends at its first empty line.
    size_t end = std::string::npos;
    for (size_t nl = head.find('\n', line_start); nl != std::string::npos;
         nl = head.find('\n', line_start)) {
      const bool blank = nl == line_start || (nl == line_start + 1 && head[line_start] == '\r');
      line_start = nl + 1;
      if (!blank) {
        ++lines;
      } else if (lines > 0) {
        end = line_start;
        break;
      }
    }
    if (end != std::string::npos) {
      conn.pending = head.substr(end);
      head.resize(end);
      std::istringstream in(head);
      resp->clear();
      resp->read(in);  // a malformed head throws Poco::Net::MessageException
      const int status = static_cast<int>(resp->getStatus());
      if (status < 100 || status >= 200 || status == 101) return Status::OK();
      // An interim answer (100 Continue, 103 Early Hints): the real one follows.
      head = std::move(conn.pending);
      conn.pending.clear();
      line_start = 0;
      lines = 0;
      continue;
    }
    if (head.size() > kMaxResponseHeadBytes) {
      return Status::Network(ctx, "the response head (status line and headers) is longer than " +
                                      FormatBytes(kMaxResponseHeadBytes) +
                                      " and has not ended (an endless header?): the server is "
                                      "broken or hostile");
    }
    if (lines > kMaxResponseHeadLines) {
      return Status::Network(ctx, "the response head has more than " +
                                      std::to_string(kMaxResponseHeadLines) +
                                      " lines and has not ended (an endless header?): the "
                                      "server is broken or hostile");
    }
    int got = 0;
    SA_RETURN_IF_ERROR(conn.Read(buf, sizeof buf, watch, &got));
    if (got <= 0) {
      if (!any) {
        *nothing_arrived = true;
        return Status::Network(ctx, "connection closed before a response arrived");
      }
      return Status::Network(ctx, "connection closed in the middle of the response head after " +
                                      std::to_string(head.size()) + " bytes");
    }
    any = true;
    head.append(buf, static_cast<size_t>(got));
  }
}

Status HttpClient::Impl::ReadBody(Connection& conn, const Poco::Net::HTTPResponse& resp,
                                  bool has_body, const BodySink* sink, uint64_t max_bytes,
                                  TransferWatch* watch, const std::string& ctx, bool* complete,
                                  uint64_t* received) {
  *complete = false;
  *received = 0;
  if (!has_body) {
    *complete = true;
    return Status::OK();
  }
  // Pieces of up to kBodyPieceBytes; a small body (a pointer, a config
  // file) needs no more than its length, which keeps many clients small.
  size_t piece = kBodyPieceBytes;
  const int64_t length = resp.getContentLength64();
  if (length >= 0) {
    piece = static_cast<size_t>(
        std::clamp<int64_t>(length, kSmallBodyPieceBytes, static_cast<int64_t>(kBodyPieceBytes)));
  }
  if (body_buf.size() < piece) body_buf.resize(piece);
  PieceBuffer pieces(&body_buf, sink);
  Status st;
  try {
    st = ReadFramedBody(conn, resp, &pieces, max_bytes, watch, ctx, complete, received);
  } catch (...) {
    // Hand over what did arrive, so that a caller can resume after it; the
    // transport error is what gets reported.
    pieces.Flush();
    throw;
  }
  if (pieces.sink_failed()) return st;  // the sink's own error; do not call it again
  Status flushed = pieces.Flush();
  return st.ok() ? flushed : st;
}

Status HttpClient::Impl::ReadFramedBody(Connection& conn, const Poco::Net::HTTPResponse& resp,
                                        PieceBuffer* pieces, uint64_t max_bytes,
                                        TransferWatch* watch, const std::string& ctx,
                                        bool* complete, uint64_t* received) {
  if (resp.getChunkedTransferEncoding()) {
    if (raw_buf.empty()) raw_buf.resize(kRawReadBytes);
    ChunkedDecoder decoder;
    bool over_limit = false;
    ChunkedDecoder::Output out = [&](const char* data, size_t n) -> Status {
      if (*received + n > max_bytes) {
        over_limit = true;
        n = static_cast<size_t>(max_bytes - *received);
      }
      *received += n;
      return pieces->Append(data, n);
    };
    while (!decoder.done() && !over_limit) {
      int n = 0;
      SA_RETURN_IF_ERROR(conn.Read(raw_buf.data(), raw_buf.size(), watch, &n));
      if (n <= 0) {
        return Status::Network(ctx, "connection closed in the middle of a chunked body after " +
                                        std::to_string(*received) + " bytes");
      }
      size_t consumed = 0;
      Status st = decoder.Feed(raw_buf.data(), static_cast<size_t>(n), &consumed, out);
      if (!st.ok()) {
        if (!decoder.error().empty()) {
          return Status::Network(ctx, "malformed chunked body: " + decoder.error());
        }
        return st;  // from the sink
      }
      // Bytes past the end of the body mean the server sent something we did
      // not ask for: the connection cannot be trusted for the next request.
      if (decoder.done() && consumed < static_cast<size_t>(n)) over_limit = true;
    }
    *complete = decoder.done() && !over_limit;
    return Status::OK();
  }

  if (resp.hasContentLength()) {
    const uint64_t length =
        static_cast<uint64_t>(std::max<Poco::Int64>(0, resp.getContentLength64()));
    if (length > max_bytes) return Status::OK();  // not worth reading; *complete stays false
    while (*received < length) {
      // Straight into the piece buffer: no copy on the hot path.
      size_t want = static_cast<size_t>(std::min<uint64_t>(pieces->room(), length - *received));
      int n = 0;
      SA_RETURN_IF_ERROR(conn.Read(pieces->tail(), want, watch, &n));
      if (n <= 0) {
        return Status::Network(ctx, "connection closed after " + std::to_string(*received) +
                                        " of " + std::to_string(length) + " bytes");
      }
      *received += static_cast<uint64_t>(n);
      SA_RETURN_IF_ERROR(pieces->Commit(static_cast<size_t>(n)));
    }
    *complete = true;
    return Status::OK();
  }

  // No length and not chunked: the body ends when the server closes.
  while (*received < max_bytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(pieces->room(), max_bytes - *received));
    int n = 0;
    SA_RETURN_IF_ERROR(conn.Read(pieces->tail(), want, watch, &n));
    if (n <= 0) break;
    *received += static_cast<uint64_t>(n);
    SA_RETURN_IF_ERROR(pieces->Commit(static_cast<size_t>(n)));
  }
  *complete = false;  // the server closes this connection
  return Status::OK();
}

Status HttpClient::Impl::Exchange(const HttpRequest& request, const std::string& url,
                                  bool same_origin, std::optional<Clock::time_point> deadline,
                                  const BodySink& sink, HttpResponse* response,
                                  std::string* location) {
  const std::string method = MethodName(request);
  const std::string ctx = method + " " + url;
  auto parsed_or = ParseUrl(url);
  if (!parsed_or.ok()) return parsed_or.status();
  const ParsedUrl& parsed = parsed_or.value();
  SA_ASSIGN_OR_RETURN(Connection * conn, GetConnection(parsed));
  Poco::Net::HTTPClientSession& session = *conn->session;

  for (int attempt = 0;; ++attempt) {
    if (Cancelled(request.cancel)) return Status::Cancelled(ctx, "cancelled");
    *response = HttpResponse();
    location->clear();
    Phase phase = Phase::kConnect;
    bool reused = false;
    last_certificate_error.clear();
    uint64_t received = 0;
    std::optional<uint64_t> expected;
    try {
      // A pooled connection the server has closed reads as EOF: drop it now
      // rather than fail the request on it.
      if (session.connected() && ReadableNow(session.socket().impl()->sockfd())) conn->Close();
      reused = session.connected();
      phase = reused ? Phase::kSend : Phase::kConnect;

      Poco::Net::HTTPRequest req(method, parsed.target, Poco::Net::HTTPMessage::HTTP_1_1);
      req.set("User-Agent", options.user_agent);
      req.set("Accept-Encoding", "identity");
      if (request.range_first) {
        std::string range = "bytes=" + std::to_string(*request.range_first) + "-";
        if (request.range_last) range += std::to_string(*request.range_last);
        req.set("Range", range);
      } else if (!request.ranges.empty()) {
        req.set("Range", FormatRangeHeader(request.ranges));
      }
      if (!request.if_none_match.empty()) req.set("If-None-Match", request.if_none_match);
      if (!request.if_modified_since.empty()) {
        req.set("If-Modified-Since", request.if_modified_since);
      }
      for (const auto& [name, value] : request.headers) {
        // Credentials stay with the origin they were meant for.
        std::string lname = AsciiLower(name);
        if (!same_origin && (lname == "authorization" || lname == "cookie")) continue;
        req.set(name, value);
      }
      if (same_origin && !options.authorization.empty() && !req.has("Authorization")) {
        req.set("Authorization", options.authorization);
      }
      if (request.post_body) {
        req.setContentLength64(static_cast<Poco::Int64>(request.post_body->size()));
        if (!request.content_type.empty()) req.setContentType(request.content_type);
        std::ostream& body = session.sendRequest(req);
        body.write(request.post_body->data(),
                   static_cast<std::streamsize>(request.post_body->size()));
        body.flush();
      } else {
        // Poco flushes the request in receiveResponse, which is not used.
        session.sendRequest(req).flush();
      }
      phase = Phase::kReceive;
      // The head is read here rather than by Poco's receiveResponse, which
      // waits for as long as the server dribbles and cannot be stopped.
      TransferWatch watch(Limits(request, deadline), request.cancel, ctx);
      watch.StartHead(Clock::now());
      session.socket().setReceiveTimeout(ToTimespan(kWaitSlice));
      Poco::Net::HTTPResponse resp;
      bool nothing_arrived = false;
      Status head = ReadHead(*conn, &watch, ctx, &resp, &nothing_arrived);
      if (!head.ok()) {
        conn->Close();
        // A kept-alive connection may have been closed by the server just as
        // we reused it; nothing of the response was seen, so resend once.
        if (nothing_arrived && reused && attempt == 0) continue;
        return head;
      }
      phase = Phase::kBody;

      // Poco reads any word as the version and any 1 to 3 digits as the
      // status; what is not an HTTP/1.x status line (RFC 9112 4: three
      // digits, RFC 9110 15: 100 to 599) is not an answer to trust.
      const int status_code = static_cast<int>(resp.getStatus());
      if (resp.getVersion().rfind("HTTP/1.", 0) != 0 || status_code < 100 || status_code > 599) {
        conn->Close();
        return Status::Network(
            ctx, "malformed HTTP response: the status line starts " +
                     JsonQuote(resp.getVersion() + " " + std::to_string(status_code)) +
                     ", not HTTP/1.x and a status from 100 to 599");
      }
      response->status = static_cast<int>(resp.getStatus());
      response->reason = resp.getReason();
      for (const auto& [name, value] : resp) {
        auto [it, inserted] = response->headers.emplace(AsciiLower(name), value);
        if (!inserted) it->second += ", " + value;
      }
      // RFC 9110 8.6: Content-Length given twice (or as a list) with
      // different values leaves the body's end ambiguous; refuse it.
      if (auto cl = response->headers.find("content-length"); cl != response->headers.end()) {
        if (std::string conflict = ConflictingListValues(cl->second); !conflict.empty()) {
          conn->Close();
          return Status::Network(ctx, "the response has conflicting Content-Length values (" +
                                          conflict + ") in \"Content-Length: " + cl->second +
                                          "\"; its body's length is ambiguous");
        }
      }
      // We ask for identity; a body encoded anyway would be hashed and served
      // as the encoded bytes, so say what the server did instead.
      if (auto ce = response->headers.find("content-encoding");
          ce != response->headers.end() && !request.head && response->status >= 200 &&
          response->status < 300 && AsciiLower(ce->second) != "identity") {
        conn->Close();
        return Status::Network(ctx,
                               "the server sent the body with Content-Encoding: " + ce->second +
                                   ", which was not asked for (Accept-Encoding: identity); "
                                   "serve these files uncompressed (nginx: gzip off)");
      }
      response->etag = resp.get("ETag", "");
      response->last_modified = resp.get("Last-Modified", "");
      if (resp.hasContentLength() && resp.getContentLength64() >= 0) {
        response->content_length = static_cast<uint64_t>(resp.getContentLength64());
        expected = response->content_length;
      }
      if (response->status == 206 || response->status == 416) {
        SetContentRange(resp.get("Content-Range", ""), response);
      }
      if (IsRedirect(response->status) && resp.has("Location")) {
        *location = ResolveLocation(parsed, resp.get("Location"));
      }

      response->final_url = url;

      const int status = response->status;
      const bool has_body = !request.head && status >= 200 && status != 204 && status != 304;
      const bool success = status == 200 || status == 206;
      if (success && request.on_headers) {
        Status st = request.on_headers(*response);
        if (!st.ok()) {
          conn->Close();  // the body is not wanted; reading it could take long
          return st;
        }
      }
      const bool stream = success && sink && location->empty();
      bool complete = false;
      if (stream) {
        const std::optional<uint64_t> max = request.max_body_bytes;
        auto too_large = [&] {
          conn->Close();
          return Status::InvalidArgument(ctx, "response body is larger than " +
                                                  std::to_string(*max) +
                                                  " bytes, the limit for this request");
        };
        if (max && has_body && expected && *expected > *max) return too_large();
        // One byte more than the limit tells a body that is too long from
        // one that is exactly as long.
        uint64_t limit = std::numeric_limits<uint64_t>::max();
        if (max && *max < limit) limit = *max + 1;
        watch.StartBody(Clock::now(), &received, expected);
        Status st =
            ReadBody(*conn, resp, has_body, &sink, limit, &watch, ctx, &complete, &received);
        if (!st.ok()) {
          conn->Close();
          return st;
        }
        if (max && received > *max) return too_large();
      } else {
        // The caller only wants the status; failing to drain (or draining
        // for longer than kDrainTime) costs a reconnect, not the response.
        TransferLimits drain = Limits(request, deadline);
        Clock::time_point drain_end = Clock::now() + kDrainTime;
        if (!drain.deadline || drain_end < *drain.deadline) drain.deadline = drain_end;
        TransferWatch drain_watch(drain, request.cancel, ctx);
        drain_watch.StartBody(Clock::now(), &received, expected);
        try {
          Status st = ReadBody(*conn, resp, has_body, nullptr, kDrainLimitBytes, &drain_watch, ctx,
                               &complete, &received);
          if (st.IsCancelled()) {
            conn->Close();
            return st;
          }
          if (!st.ok()) complete = false;
        } catch (const Poco::Exception&) {
          complete = false;
        }
      }
      // Bytes past the body were not asked for (a Content-Length shorter
      // than what was sent): the connection cannot serve the next request.
      if (!complete || !resp.getKeepAlive() || !conn->pending.empty()) conn->Close();
      return Status::OK();
    } catch (const Poco::Exception& e) {
      conn->Close();
      // A kept-alive connection may have been closed by the server just as
      // we reused it; nothing of the response was seen, so resend once.
      if (reused && attempt == 0 && phase != Phase::kBody && RetryableOnFreshConnection(e)) {
        continue;
      }
      std::string detail = DescribeException(e, phase, options);
      if (phase == Phase::kBody) {
        detail += "; received " + std::to_string(received) + " of " +
                  (expected ? std::to_string(*expected) : std::string("?")) + " bytes";
      }
      return Status::Network(ctx, detail);
    } catch (const std::exception& e) {
      conn->Close();
      return Status::Network(ctx, e.what());
    }
  }
}

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() = default;

SharedConnections::SharedConnections(size_t max_idle) : impl_(std::make_unique<Impl>()) {
  impl_->max_idle = max_idle;
}

SharedConnections::~SharedConnections() = default;

size_t SharedConnections::idle() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->count;
}

uint64_t SharedConnections::opened() const { return impl_->opened.load(); }

Result<HttpResponse> HttpClient::Send(const HttpRequest& request, const BodySink& sink) {
  const std::string method = MethodName(request) + " ";
  if (request.range_last && (!request.range_first || *request.range_last < *request.range_first)) {
    return Status::InvalidArgument(method + request.url,
                                   "range_last needs range_first <= range_last");
  }
  if (!request.ranges.empty()) {
    if (request.range_first) {
      return Status::InvalidArgument(method + request.url,
                                     "set either range_first or ranges, not both");
    }
    for (const ByteRange& r : request.ranges) {
      if (r.length == 0 || r.end() < r.offset) {
        return Status::InvalidArgument(
            method + request.url,
            "range at " + std::to_string(r.offset) + " is empty or runs past 2^64");
      }
    }
  }
  for (const auto& [name, value] : request.headers) {
    if ((name + value).find_first_of("\r\n") != std::string::npos || name.empty()) {
      return Status::InvalidArgument(method + request.url,
                                     "header '" + name + "' is empty or contains a line break");
    }
  }
  auto original = ParseUrl(request.url);
  if (!original.ok()) return original.status();
  std::optional<Clock::time_point> deadline;
  if (request.deadline) deadline = Clock::now() + *request.deadline;
  std::string url = request.url;
  for (int redirects = 0;; ++redirects) {
    auto parsed = ParseUrl(url);
    if (!parsed.ok()) return parsed.status().WithContext(method + request.url);
    bool same_origin = parsed->Origin() == original->Origin();
    HttpResponse response;
    std::string location;
    SA_RETURN_IF_ERROR(
        impl_->Exchange(request, url, same_origin, deadline, sink, &response, &location));
    if (location.empty() || !request.follow_redirects) {
      response.final_url = url;
      response.location = location;
      return response;
    }
    if (redirects >= impl_->options.max_redirects) {
      return Status::Network(method + request.url,
                             "too many redirects (more than " +
                                 std::to_string(impl_->options.max_redirects) + "), last to " +
                                 location);
    }
    if (parsed->scheme == "https" && AsciiLower(location.substr(0, 7)) == "http://") {
      return Status::Network(method + url,
                             "refusing redirect from https to plain http: " + location);
    }
    url = location;
  }
}

Result<std::pair<HttpResponse, std::string>> HttpClient::Fetch(const HttpRequest& request,
                                                               uint64_t max_bytes) {
  HttpRequest limited = request;
  if (!limited.max_body_bytes || *limited.max_body_bytes > max_bytes) {
    limited.max_body_bytes = max_bytes;
  }
  std::string body;
  BodySink sink = [&](const char* data, size_t n) -> Status {
    if (body.size() + n > max_bytes) {
      return Status::InvalidArgument(
          MethodName(request) + " " + request.url,
          "response body is larger than " + std::to_string(max_bytes) + " bytes");
    }
    body.append(data, n);
    return Status::OK();
  };
  SA_ASSIGN_OR_RETURN(HttpResponse response, Send(limited, sink));
  return std::make_pair(std::move(response), std::move(body));
}

std::string FormatHttpDate(int64_t unix_seconds) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

}  // namespace sync_agent
