// `sync-agent serve`: the built-in HTTP server. `serve ROOT` serves a static
// tree (a publish root or a mirror root); `serve --config F` serves this
// node's repositories as a Hugging Face Hub (common/serve/hub_api.h) beside
// the plain mirror tree. Production nodes put nginx in front: with
// --x-accel-redirect the node answers metadata and nginx sends the bodies.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "agent/args.h"
#include "agent/commands.h"
#include "agent/signals.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/config/config.h"
#include "common/fs/env.h"
#include "common/http/static_server.h"
#include "common/serve/hub_api.h"

namespace sync_agent {

namespace {

// --NAME N with min <= N <= 1000000; false (after saying why) when bad.
bool ParseCountFlag(const ParsedArgs& parsed, const char* name, int min, int* out) {
  if (!parsed.Has(name)) return true;
  const std::string text = parsed.Get(name);
  try {
    size_t used = 0;
    int n = std::stoi(text, &used);
    if (used == text.size() && n >= min && n <= 1000000) {
      *out = n;
      return true;
    }
  } catch (...) {
  }
  std::fprintf(stderr, "sync-agent: --%s must be a number from %d to 1000000, not \"%s\"\n", name,
               min, text.c_str());
  return false;
}

// --NAME DURATION ("10s", "1m"), at least one second.
bool ParseDurationFlag(const ParsedArgs& parsed, const char* name, std::chrono::milliseconds* out) {
  if (!parsed.Has(name)) return true;
  Result<std::chrono::milliseconds> d = ParseDuration(parsed.Get(name));
  if (!d.ok() || *d < std::chrono::seconds(1)) {
    std::fprintf(
        stderr,
        "sync-agent: --%s must be a duration of at least 1s (\"10s\", \"2m\"), not \"%s\"\n", name,
        parsed.Get(name).c_str());
    return false;
  }
  *out = *d;
  return true;
}

// Each connection holds a descriptor, and a refused one a moment longer:
// raise the soft open-files limit toward the hard one so that the server's
// own limits, not EMFILE, decide. Warns when even the hard limit is short.
void RaiseOpenFilesLimit(int max_connections) {
  const rlim_t want = 2 * static_cast<rlim_t>(max_connections) + 256;
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= want) return;
  rlim_t target = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  if (target > lim.rlim_cur) {
    lim.rlim_cur = target;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur < want) {
    LogWarning(
        "the open-files limit is below what the connection limit needs; connections beyond "
        "it are answered 503 (raise LimitNOFILE= or lower serve_max_connections)",
        {{"open_files_limit", std::to_string(lim.rlim_cur)},
         {"serve_max_connections", std::to_string(max_connections)},
         {"needs", std::to_string(want)}});
  }
}

}  // namespace

int CmdServe(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent serve ROOT [--listen HOST:PORT] [--access-log FILE] [--threads N]\n"
      "       [--max-connections N] [--max-connections-per-address N]\n"
      "       [--request-timeout DURATION] [--keep-alive-timeout DURATION]\n"
      "       sync-agent serve --config FILE [--listen HOST:PORT] [--x-accel-redirect PREFIX]\n"
      "Serves the files under ROOT (a publish root or a mirror root) over HTTP/1.1:\n"
      "GET and HEAD, byte ranges, ETag and Last-Modified. With --config, serves the\n"
      "node's mirror root and its repositories as a Hugging Face Hub (HF_ENDPOINT):\n"
      "/api/models/..., /api/datasets/..., /<repo>/resolve/<rev>/<path>, read from\n"
      "what the node holds. Stops on SIGTERM or SIGINT.";
  std::vector<OptionSpec> specs = {
      {"listen", true, "HOST:PORT",
       "address to listen on (default 127.0.0.1:8080; port 0 picks one)"},
      {"access-log", true, "FILE", "append one line per request to FILE"},
      {"threads", true, "N", "worker threads (default 32)"},
      {"max-connections", true, "N",
       "connections open at once; more get 503 (default 1024; config serve_max_connections)"},
      {"max-connections-per-address", true, "N",
       "connections from one IP; more get 503, 0: no cap (default 64, 0 with "
       "--x-accel-redirect; config "
       "serve_max_connections_per_address)"},
      {"request-timeout", true, "DURATION",
       "time a client has to send a whole request head (default 10s; config "
       "serve_request_timeout)"},
      {"keep-alive-timeout", true, "DURATION",
       "idle time before a kept-alive connection is closed (default 15s; config "
       "serve_keep_alive_timeout)"},
      {"config", true, "FILE", "serve this node (its mirror root and the Hub API)"},
      {"x-accel-redirect", true, "PREFIX",
       "with --config: hand file bodies to nginx at this internal location (e.g. "
       "/_sync_agent_files/)"},
      {"log-format", true, "FMT", "log lines as \"plain\" (default) or \"json\""},
      {"help", false, "", "show this help"}};
  ParsedArgs parsed;
  std::string error;
  if (!ParseArgs(args, specs, &parsed, &error)) {
    std::fprintf(stderr, "sync-agent: %s\n%s\noptions:\n%s", error.c_str(), usage.c_str(),
                 FormatOptions(specs).c_str());
    return kExitUsage;
  }
  if (parsed.Has("help")) {
    std::printf("%s\noptions:\n%s", usage.c_str(), FormatOptions(specs).c_str());
    return kExitOk;
  }
  LogFormat fmt;
  if (!ParseLogFormat(parsed.Get("log-format", "plain"), &fmt)) {
    std::fprintf(stderr, "sync-agent: --log-format must be \"plain\" or \"json\"\n");
    return kExitUsage;
  }
  SetLogFormat(fmt);
  const bool node = parsed.Has("config");
  if (parsed.positional.size() != (node ? 0u : 1u)) {
    std::fprintf(stderr,
                 "sync-agent: serve needs exactly one ROOT directory, or --config and none\n%s\n",
                 usage.c_str());
    return kExitUsage;
  }
  if (parsed.Has("x-accel-redirect") && !node) {
    std::fprintf(stderr, "sync-agent: --x-accel-redirect needs --config\n");
    return kExitUsage;
  }
  StaticFileServer::Options opt;
  std::unique_ptr<HubApi> hub;
  if (node) {
    auto config = LoadConfig(parsed.Get("config"));
    if (!config.ok()) {
      std::fprintf(stderr, "sync-agent: %s\n", config.status().ToString().c_str());
      return kExitUsage;
    }
    HubApiOptions ho;
    ho.state_dir = config->state_dir;
    ho.mirror_root = config->mirror_root;
    ho.accel_redirect_prefix = parsed.Get("x-accel-redirect");
    if (!ho.accel_redirect_prefix.empty() &&
        (ho.accel_redirect_prefix.front() != '/' || ho.accel_redirect_prefix.back() != '/')) {
      std::fprintf(stderr,
                   "sync-agent: --x-accel-redirect wants a location such as "
                   "/_sync_agent_files/ (starting and ending with '/')\n");
      return kExitUsage;
    }
    for (const RepoConfig& r : config->repos) {
      for (const SpecField& f : r.source->Describe()) {
        if (f.key == "ref") ho.refs[r.local_name()].push_back(f.value);
      }
    }
    if (!Env::Default()->Stat(config->mirror_root).ok()) {
      Status made = CreateDirs(Env::Default(), config->mirror_root, 0755);
      if (!made.ok()) {
        std::fprintf(stderr, "sync-agent: %s\n", made.ToString().c_str());
        return kExitFailed;
      }
    }
    opt.root = config->mirror_root;
    opt.max_connections = config->serve_max_connections.value_or(opt.max_connections);
    // Behind nginx (--x-accel-redirect) every request comes from nginx's
    // address: a cap per address would cap nginx, which caps clients itself.
    const int per_address_default =
        ho.accel_redirect_prefix.empty() ? opt.max_connections_per_address : 0;
    opt.max_connections_per_address =
        config->serve_max_connections_per_address.value_or(per_address_default);
    opt.request_timeout = config->serve_request_timeout.value_or(opt.request_timeout);
    opt.keep_alive_timeout = config->serve_keep_alive_timeout.value_or(opt.keep_alive_timeout);
    hub = std::make_unique<HubApi>(std::move(ho));
    HubApi* api = hub.get();
    opt.router = [api](const RoutedRequest& r) { return api->Handle(r); };
  } else {
    opt.root = parsed.positional[0];
  }
  std::string listen = parsed.Get("listen", "127.0.0.1:8080");
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    std::fprintf(stderr, "sync-agent: --listen wants HOST:PORT, not \"%s\"\n", listen.c_str());
    return kExitUsage;
  }
  opt.host = listen.substr(0, colon);
  if (opt.host.size() > 2 && opt.host.front() == '[' && opt.host.back() == ']') {
    opt.host = opt.host.substr(1, opt.host.size() - 2);
  }
  try {
    size_t used = 0;
    opt.port = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || opt.port < 0 || opt.port > 65535) throw 1;
  } catch (...) {
    std::fprintf(stderr, "sync-agent: --listen port must be 0-65535, not \"%s\"\n",
                 listen.substr(colon + 1).c_str());
    return kExitUsage;
  }
  if (parsed.Has("threads")) {
    try {
      opt.max_threads = std::stoi(parsed.Get("threads"));
      if (opt.max_threads < 1 || opt.max_threads > 1024) throw 1;
    } catch (...) {
      std::fprintf(stderr, "sync-agent: --threads must be 1-1024\n");
      return kExitUsage;
    }
  }
  if (!ParseCountFlag(parsed, "max-connections", 1, &opt.max_connections) ||
      !ParseCountFlag(parsed, "max-connections-per-address", 0, &opt.max_connections_per_address) ||
      !ParseDurationFlag(parsed, "request-timeout", &opt.request_timeout) ||
      !ParseDurationFlag(parsed, "keep-alive-timeout", &opt.keep_alive_timeout)) {
    return kExitUsage;
  }
  RaiseOpenFilesLimit(opt.max_connections);
  opt.access_log_path = parsed.Get("access-log");
  auto info = Env::Default()->Stat(opt.root);
  if (!info.ok() || info->type != FileInfo::Type::kDirectory) {
    std::fprintf(stderr, "sync-agent: serve: %s is not a directory\n", opt.root.c_str());
    return kExitUsage;
  }
  SignalWatcher signals;
  StaticFileServer server(opt);
  Status s = server.Start();
  if (!s.ok()) {
    std::fprintf(stderr, "sync-agent: %s\n", s.ToString().c_str());
    return kExitFailed;
  }
  LogInfo("serving", {{"root", opt.root}, {"url", server.url() + "/"}});
  while (!signals.stop_requested()) {
    signals.WaitFor(std::chrono::seconds(3600));
    if (signals.TakeReload()) LogInfo("SIGHUP ignored: serve has no configuration to reload");
  }
  server.Stop();
  auto st = server.stats();
  LogInfo("server stopped", {{"requests", std::to_string(st.requests)},
                             {"bytes", std::to_string(st.body_bytes)},
                             {"refused_503", std::to_string(st.refused_connections)},
                             {"timed_out_408", std::to_string(st.timed_out_requests)}});
  return kExitOk;
}

}  // namespace sync_agent
