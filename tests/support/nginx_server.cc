#include "tests/support/nginx_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/fs/env.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {
namespace {

constexpr const char* kNginx = "/usr/sbin/nginx";
// A port taken by someone else between FreeLoopbackPort() and nginx's bind()
// makes nginx exit; a few fresh ports make that race harmless.
constexpr int kPortAttempts = 4;
constexpr auto kStartTimeout = std::chrono::seconds(15);
constexpr auto kGracefulStopTimeout = std::chrono::seconds(5);

// The path and every parent must be enterable by others for nginx's workers.
std::string CheckTraversableByOthers(const std::string& root) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) {
    return "root " + root + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode)) return "root " + root + " is not a directory";
  if (::geteuid() != 0) return {};  // workers run as us and can read what we can
  if ((st.st_mode & S_IROTH) == 0) {
    return "root " + root + " is not readable by others (nginx workers run as nobody)";
  }
  for (std::string dir = root; !dir.empty() && dir != "/"; dir = DirName(dir)) {
    if (::stat(dir.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) {
      return dir +
             " is not traversable by others (nginx workers run as nobody); create the "
             "root with TempDir(/*world_readable=*/true)";
    }
    if (dir == ".") break;
  }
  return {};
}

}  // namespace

std::unique_ptr<BackgroundProcess> StartFcgiWrap(const std::string& socket, std::string* error) {
  // umask 0: nginx's workers (nobody) must be able to connect to the socket.
  auto p = std::make_unique<BackgroundProcess>(std::vector<std::string>{
      "/bin/sh", "-c", "umask 000; exec /usr/sbin/fcgiwrap -s unix:" + socket});
  bool up = WaitFor([&] { return ::access(socket.c_str(), F_OK) == 0; }, std::chrono::seconds(10));
  if (!up) {
    *error = "fcgiwrap did not create " + socket + ": " + p->Stderr();
    return nullptr;
  }
  return p;
}

namespace {

std::string BuildConfig(const std::string& prefix, const NginxServer::Options& options, int port) {
  std::ostringstream c;
  c << "# Written by the sync-agent test fixture (tests/support/nginx_server.cc).\n"
    << "daemon off;\n"
    << "master_process on;\n"
    << "worker_processes 1;\n"
    << "pid " << prefix << "/nginx.pid;\n"
    << "error_log " << prefix << "/logs/error.log warn;\n"
    << "events { worker_connections 256; }\n"
    << "http {\n"
    << "  default_type application/octet-stream;\n"
    << "  log_format sa_test '$connection $request_method $uri $status $body_bytes_sent "
       "\"$http_range\"';\n"
    << "  access_log " << prefix << "/logs/access.log sa_test;\n"
    << "  client_body_temp_path " << prefix << "/tmp/client_body;\n"
    << "  proxy_temp_path " << prefix << "/tmp/proxy;\n"
    << "  fastcgi_temp_path " << prefix << "/tmp/fastcgi;\n"
    << "  uwsgi_temp_path " << prefix << "/tmp/uwsgi;\n"
    << "  scgi_temp_path " << prefix << "/tmp/scgi;\n"
    << "  sendfile on;\n"
    << "  tcp_nopush on;\n"
    << "  etag on;\n";
  if (!options.http_blocks.empty()) {
    std::string blocks = options.http_blocks;
    for (size_t at; (at = blocks.find("@PORT@")) != std::string::npos;) {
      blocks.replace(at, 6, std::to_string(port));
    }
    c << blocks << "\n}\n";
    return c.str();
  }
  c << "  server {\n"
    << "    listen 127.0.0.1:" << port << (options.tls_cert.empty() ? "" : " ssl") << ";\n"
    << "    server_name localhost;\n"
    << "    root " << options.root << ";\n"
    << "    autoindex off;\n";
  if (!options.tls_cert.empty()) {
    c << "    ssl_certificate " << options.tls_cert << ";\n"
      << "    ssl_certificate_key " << options.tls_key << ";\n";
  }
  if (!options.limit_rate.empty()) c << "    limit_rate " << options.limit_rate << ";\n";
  if (!options.unlimited_while_exists.empty()) {
    c << "    if (-f " << options.unlimited_while_exists << ") { set $limit_rate 0; }\n";
  }
  if (!options.limit_rate_after.empty()) {
    c << "    limit_rate_after " << options.limit_rate_after << ";\n";
  }
  if (!options.require_authorization.empty()) {
    c << "    if ($http_authorization != \"" << options.require_authorization
      << "\") { return 401; }\n";
  }
  if (!options.ranges_ok) {
    c << "    max_ranges 0;\n";
  } else if (!options.multi_range_ok) {
    c << "    max_ranges 1;\n";
  }
  if (!options.lfs_upstream.empty()) {
    c << "    location ~ \\.git/info/lfs/ {\n"
      << "      proxy_pass http://" << options.lfs_upstream << ";\n"
      << "      proxy_set_header Host $http_host;\n"
      << "    }\n";
  }
  if (!options.git_project_root.empty()) {
    c << "    location ~ \\.git/(HEAD|info/refs|objects/info/.*|git-upload-pack)$ {\n"
      << "      include /etc/nginx/fastcgi_params;\n"
      << "      fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;\n"
      << "      fastcgi_param GIT_HTTP_EXPORT_ALL \"\";\n"
      << "      fastcgi_param GIT_PROJECT_ROOT " << options.git_project_root << ";\n"
      << "      fastcgi_param PATH_INFO $uri;\n"
      << "      fastcgi_pass unix:" << options.fcgi_socket << ";\n"
      << "    }\n";
  }
  c << "    location / { }\n"
    << "  }\n"
    << "}\n";
  return c.str();
}

// Parses `7 GET /a/b 206 100 "bytes=0-99"` (the first field is nginx's
// connection serial number). The URI may contain spaces; the range never
// contains a raw quote (nginx escapes it), so fields are taken from both ends.
bool ParseAccessLine(std::string line, AccessLogEntry* out) {
  size_t connection_sp = line.find(' ');
  if (connection_sp == std::string::npos || connection_sp == 0) return false;
  try {
    out->connection = std::stoull(line.substr(0, connection_sp));
  } catch (const std::exception&) {
    return false;
  }
  line.erase(0, connection_sp + 1);
  if (line.size() < 2 || line.back() != '"') return false;
  size_t open = line.rfind(" \"");
  if (open == std::string::npos) return false;
  std::string range = line.substr(open + 2, line.size() - open - 3);
  std::string head = line.substr(0, open);
  size_t bytes_sp = head.rfind(' ');
  if (bytes_sp == std::string::npos) return false;
  size_t status_sp = head.rfind(' ', bytes_sp - 1);
  size_t method_sp = head.find(' ');
  if (status_sp == std::string::npos || method_sp >= status_sp) return false;
  try {
    out->method = head.substr(0, method_sp);
    out->uri = head.substr(method_sp + 1, status_sp - method_sp - 1);
    out->status = std::stoi(head.substr(status_sp + 1, bytes_sp - status_sp - 1));
    out->bytes_sent = std::stoull(head.substr(bytes_sp + 1));
  } catch (const std::exception&) {
    return false;
  }
  out->range = range == "-" ? "" : range;  // nginx logs an empty variable as "-"
  return true;
}

}  // namespace

NginxServer::NginxServer(Options options) : options_(std::move(options)) {}

NginxServer::~NginxServer() { Stop(); }

bool NginxServer::Available() { return ::access(kNginx, X_OK) == 0; }

std::string NginxServer::url() const {
  return (options_.tls_cert.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") +
         std::to_string(port_);
}

std::string NginxServer::AccessLogPath() const {
  return prefix_ ? prefix_->Sub("logs/access.log") : std::string();
}

std::string NginxServer::ErrorLog() const {
  return prefix_ ? ReadFile(prefix_->Sub("logs/error.log")) : std::string();
}

bool NginxServer::Start(std::string* error) {
  if (process_ || prefix_) {
    *error = "NginxServer::Start called twice";
    return false;
  }
  if (!Available()) {
    *error = std::string(kNginx) + " is not installed";
    return false;
  }
  if (std::string why = CheckTraversableByOthers(options_.root); !why.empty()) {
    *error = why;
    return false;
  }
  for (int attempt = 1;; ++attempt) {
    if (StartOnPort(FreeLoopbackPort(), error)) return true;
    Stop();
    // Only a lost race for the port is worth another try; a bad config is not.
    if (attempt == kPortAttempts || error->find("Address already in use") == std::string::npos) {
      return false;
    }
  }
}

bool NginxServer::StartOnPort(int port, std::string* error) {
  prefix_ = std::make_unique<TempDir>(/*world_readable=*/true);
  for (const char* sub :
       {"logs", "tmp", "tmp/client_body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"}) {
    MakeDirs(prefix_->Sub(sub));
    ::chmod(prefix_->Sub(sub).c_str(), 0755);
  }
  const std::string conf = prefix_->Sub("nginx.conf");
  WriteFile(conf, BuildConfig(prefix_->path(), options_, port));
  port_ = port;

  // -e: the error log before the config is read (the build default is stderr,
  // which is captured too). -p: relative paths resolve inside the prefix.
  process_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{
      kNginx, "-p", prefix_->path() + "/", "-e", prefix_->Sub("logs/error.log"), "-c", conf});
  const std::string pid_text = std::to_string(process_->pid());
  // nginx writes its pid file only after binding the listening socket, so a
  // matching pid file means the port is ours and not someone else's.
  auto ready = [&] {
    if (!process_->Running()) return true;
    std::string pid = ReadFile(prefix_->Sub("nginx.pid"));
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return pid == pid_text && AcceptsConnections(port);
  };
  WaitFor(ready, kStartTimeout);
  if (process_->Running() && ready()) return true;
  *error = "nginx on port " + std::to_string(port) +
           (process_->Running() ? " did not accept connections in time"
                                : " exited with status " + std::to_string(process_->Wait())) +
           ": " + process_->Stderr() + ErrorLog();
  return false;
}

void NginxServer::Stop() {
  if (process_) {
    process_->Signal(SIGQUIT);
    if (!WaitFor([&] { return !process_->Running(); }, kGracefulStopTimeout)) {
      // The master was started in its own process group (see Spawn in
      // test_util.cc); killing the group also takes down its workers.
      ::kill(-process_->pid(), SIGKILL);
      process_->Wait();
    }
    process_.reset();
  }
  prefix_.reset();
  port_ = 0;
}

void NginxServer::Kill() {
  if (!process_) return;
  ::kill(-process_->pid(), SIGKILL);
  process_->Wait();
  process_.reset();
}

std::vector<AccessLogEntry> NginxServer::ReadAccessLog() const {
  std::vector<AccessLogEntry> entries;
  std::istringstream in(ReadFile(AccessLogPath()));
  std::string line;
  while (std::getline(in, line)) {
    AccessLogEntry entry;
    if (ParseAccessLine(line, &entry)) entries.push_back(std::move(entry));
  }
  return entries;
}

long NginxServer::MarkAccessLog() {
  const std::string uri = "/.sa-test-mark-" + std::to_string(++marks_);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ADD_FAILURE() << "socket: " << std::strerror(errno);
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool sent = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET " + uri + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    sent = ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(request.size());
    char buf[4096];
    while (sent && ::recv(fd, buf, sizeof buf, 0) > 0) {
    }
  }
  ::close(fd);
  if (!sent) {
    ADD_FAILURE() << "could not send the log mark to nginx on port " << port_ << ": "
                  << std::strerror(errno);
    return -1;
  }
  long index = -1;
  WaitFor(
      [&] {
        std::vector<AccessLogEntry> entries = ReadAccessLog();
        for (size_t i = entries.size(); i-- > 0;) {
          if (entries[i].uri == uri) {
            index = static_cast<long>(i);
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(10));
  if (index < 0) ADD_FAILURE() << "nginx did not log " << uri << ": " << ErrorLog();
  return index;
}

bool NginxServer::WaitForAccessLog(size_t n, std::chrono::milliseconds timeout) const {
  return WaitFor([&] { return ReadAccessLog().size() >= n; }, timeout);
}

}  // namespace sync_agent::testing
