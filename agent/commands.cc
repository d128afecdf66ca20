#include "agent/commands.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "agent/args.h"
#include "agent/signals.h"
#include "common/base/log.h"
#include "common/base/time_util.h"
#include "common/config/config.h"
#include "common/db/state_db.h"
#include "common/fs/env.h"
#include "common/hash/content_hasher.h"
#include "common/http/http_text.h"
#include "common/http/static_server.h"
#include "common/publish/git_publisher.h"
#include "common/publish/publisher.h"
#include "common/sync/metrics.h"
#include "common/sync/org_follow.h"
#include "common/sync/pin.h"
#include "common/sync/run_lock.h"
#include "common/sync/status_report.h"
#include "common/sync/sync_engine.h"
#include "common/sync/verifier.h"
#include "common/transfer/progress.h"
#include "common/trust/ed25519.h"

namespace sync_agent {
namespace {

const OptionSpec kConfigOpt{"config", true, "FILE",
                            "config file (default /etc/sync-agent/sync-agent.toml)"};
const OptionSpec kLogFormatOpt{"log-format", true, "FMT",
                               "log lines as \"plain\" (default) or \"json\""};
const OptionSpec kHelpOpt{"help", false, "", "show this help"};

void PrintError(const std::string& msg) { std::fprintf(stderr, "sync-agent: %s\n", msg.c_str()); }

// Parses args; on --help prints help and returns kExitOk through *exit_code.
bool ParseOrExit(const std::string& usage, const std::vector<std::string>& args,
                 const std::vector<OptionSpec>& specs, ParsedArgs* parsed, int* exit_code) {
  std::string error;
  if (!ParseArgs(args, specs, parsed, &error)) {
    PrintError(error);
    std::fprintf(stderr, "%s\noptions:\n%s", usage.c_str(), FormatOptions(specs).c_str());
    *exit_code = kExitUsage;
    return false;
  }
  if (parsed->Has("help")) {
    std::printf("%s\noptions:\n%s", usage.c_str(), FormatOptions(specs).c_str());
    *exit_code = kExitOk;
    return false;
  }
  return true;
}

bool ApplyLogFormat(const ParsedArgs& args, const std::string& from_config) {
  std::string fmt = args.Get("log-format", from_config.empty() ? "plain" : from_config);
  LogFormat f;
  if (!ParseLogFormat(fmt, &f)) {
    PrintError("--log-format must be \"plain\" or \"json\", not \"" + fmt + "\"");
    return false;
  }
  SetLogFormat(f);
  return true;
}

std::string DatabasePath(const Config& c) { return JoinPath(c.state_dir, "state.db"); }

SyncEngineOptions EngineOptions(const Config& c, const std::string& trigger,
                                const CancelFlag* cancel) {
  SyncEngineOptions o;
  o.state_dir = c.state_dir;
  o.mirror_root = c.mirror_root;
  o.keep_revisions = c.keep_revisions;
  o.io_timeout = c.http_timeout;
  o.low_speed_limit = c.http_low_speed_limit;
  o.low_speed_time = c.http_low_speed_time;
  o.manifest_limits = c.manifest_limits;
  o.trigger = trigger;
  o.cancel = cancel;
  o.connections_per_file = c.connections_per_file;
  o.connections_total = c.connections_total;
  o.bandwidth_limit = c.bandwidth_limit;
  o.bandwidth_schedule = c.bandwidth_schedule;
  o.ca_file = c.ca_file;
  o.progress_interval = c.progress_interval;
  o.progress_on_terminal = StderrIsTerminal();
  o.retry.max_attempts = c.retry_attempts;
  return o;
}

// One pass over every configured repository under the run lock.
// Returns kExitOk, kExitFailed or kExitBusy.
// metrics_textfile after a pass; a failure to write it fails no sync.
void WriteMetricsOrLog(Env* env, StateDb* db, const Config& config) {
  Status s = WriteMetricsTextfile(env, db, config, NowMs());
  if (!s.ok()) {
    LogError("could not write the metrics file (the sync itself is not affected)",
             {{"key", "metrics_textfile"}, {"error", s.ToString()}});
  }
}

// The daemon's GET /metrics on metrics_listen: rendered from the database
// (a read-only connection of its own) on every scrape.
class MetricsEndpoint {
 public:
  explicit MetricsEndpoint(const Config& config) : config_(config) {}
  void SetConfig(const Config& config) {
    std::lock_guard<std::mutex> lock(mu_);
    config_ = config;
  }
  Status Start() {
    StaticFileServer::Options opt;
    {
      std::lock_guard<std::mutex> lock(mu_);
      opt.root = config_.state_dir;  // never served: the router answers every request
      opt.host = config_.metrics_host;
      opt.port = config_.metrics_port;
    }
    opt.max_threads = 2;
    opt.max_connections = 64;
    opt.router = [this](const RoutedRequest& r) { return Handle(r); };
    server_ = std::make_unique<StaticFileServer>(opt);
    Status s = server_->Start();
    if (!s.ok()) return s.WithContext("metrics_listen");
    LogInfo("serving metrics", {{"url", server_->url() + "/metrics"}});
    return Status::OK();
  }

 private:
  std::optional<RoutedResponse> Handle(const RoutedRequest& r) {
    RoutedResponse resp;
    resp.content_type = "text/plain; charset=utf-8";
    std::string path = r.target.substr(0, r.target.find('?'));
    if (path != "/metrics") {
      resp.status = 404;
      resp.body = "not found; metrics are at /metrics\n";
      return resp;
    }
    if (r.method != "GET" && r.method != "HEAD") {
      resp.status = 405;
      resp.headers.emplace_back("Allow", "GET, HEAD");
      resp.body = "only GET and HEAD\n";
      return resp;
    }
    Config config;
    {
      std::lock_guard<std::mutex> lock(mu_);
      config = config_;
    }
    auto text = [&]() -> Result<std::string> {
      SA_ASSIGN_OR_RETURN(auto db, StateDb::OpenReadOnly(DatabasePath(config)));
      return RenderMetrics(Env::Default(), db.get(), config, NowMs(),
                           RunLock::IsHeldByAnyone(config.state_dir));
    }();
    if (!text.ok()) {
      resp.status = 500;
      resp.body = text.status().ToString() + "\n";
      return resp;
    }
    resp.content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp.body = std::move(text).value();
    return resp;
  }

  std::mutex mu_;
  Config config_;
  std::unique_ptr<StaticFileServer> server_;
};

int SyncAll(const Config& config, StateDb* db, const std::string& trigger,
            const std::string& only_repo, SignalWatcher* signals) {
  Env* env = Env::Default();
  Status s = CreateDirs(env, config.state_dir, 0755);
  if (!s.ok()) {
    PrintError(s.ToString());
    return kExitFailed;
  }
  SyncEngine engine(env, db, EngineOptions(config, trigger, signals->stop_flag()));
  // A node that refuses to run (a symlink planted in state_dir) says so in
  // the run record of every repository it would have synced.
  std::vector<const RepoConfig*> todo;
  for (const RepoConfig& repo : config.repos) {
    if (!only_repo.empty() && repo.name != only_repo && repo.local_name() != only_repo) continue;
    todo.push_back(&repo);
  }
  auto refuse = [&](const Status& why) {
    PrintError(why.ToString());
    engine.RecordRefusedRuns(todo, why);
    return kExitFailed;
  };
  RunLock lock;
  s = lock.TryAcquire(config.state_dir);
  if (!s.ok()) {
    if (s.code() == Status::Code::kBusy) {
      LogWarning(s.message());
      return kExitBusy;
    }
    return refuse(s);
  }
  s = engine.Init();
  if (!s.ok()) return refuse(s);
  // The repositories organisation globs follow, discovered now (org_follow.h).
  const OrgExpansion expanded =
      ExpandOrgFollows(env, config, db, &engine, signals->stop_flag(), NowMs());
  todo.clear();
  for (const RepoConfig& repo : expanded.repos) {
    if (!only_repo.empty() && repo.name != only_repo && repo.local_name() != only_repo) continue;
    todo.push_back(&repo);
  }
  if (!only_repo.empty() && todo.empty()) {
    PrintError("repository " + only_repo + " is not in " + config.path);
    return kExitUsage;
  }
  s = engine.BeginPass();
  if (!s.ok()) return refuse(s);
  // Repositories are polled at once by up to connections_total workers;
  // each poll holds one of connections_total, and at most a few
  // repositories transfer at once (SyncEngine).
  const auto began = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::atomic<int> failed{expanded.failed() ? 1 : 0};
  std::atomic<int> updated{0};
  auto work = [&] {
    while (!signals->stop_requested()) {
      const size_t i = next.fetch_add(1);
      if (i >= todo.size()) return;
      RepoSyncResult r = engine.SyncRepo(*todo[i]);
      if (!r.status.ok()) failed.fetch_add(1);
      if (r.outcome == RunOutcome::kUpdated) updated.fetch_add(1);
    }
  };
  const size_t workers =
      std::min(todo.size(), static_cast<size_t>(std::max(1, config.connections_total)));
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  s = engine.EndPass();
  if (!s.ok()) failed.fetch_add(1);
  const size_t done = std::min(next.load(), todo.size());
  if (todo.size() > 1) {
    LogInfo("pass finished",
            {{"repos", std::to_string(done)},
             {"updated", std::to_string(updated.load())},
             {"failed", std::to_string(failed.load())},
             {"took", FormatDuration(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - began))}});
  }
  WriteMetricsOrLog(env, db, config);
  if (signals->stop_requested()) return kExitFailed;
  return failed.load() ? kExitFailed : kExitOk;
}

Result<std::unique_ptr<StateDb>> OpenDatabase(const Config& config) {
  SA_RETURN_IF_ERROR(CreateDirs(Env::Default(), config.state_dir, 0755));
  return StateDb::Open(DatabasePath(config));
}

// A sync with nothing configured would exit 0 and mirror nothing, which looks
// like success to a timer; say so instead.
bool HasRepos(const Config& config, const std::string& path) {
  if (!config.repos.empty() || !config.orgs.empty()) return true;
  PrintError(path +
             ": no [[repo]] is configured, so there is nothing to sync; add a [[repo]] "
             "table with a name and its sources (see the README's configuration section)");
  return false;
}

}  // namespace

int CmdOnce(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent --once [--config FILE] [--repo ORG/NAME]\n"
      "Syncs every configured repository once. Exits 0 only if all succeeded,\n"
      "1 if any failed, 75 if another sync-agent run holds the lock.";
  std::vector<OptionSpec> specs = {
      kConfigOpt,
      kLogFormatOpt,
      {"repo", true, "ORG/NAME", "sync only this configured repository"},
      kHelpOpt};
  ParsedArgs parsed;
  int code;
  if (!ParseOrExit(usage, args, specs, &parsed, &code)) return code;
  if (!parsed.positional.empty()) {
    PrintError("unexpected argument \"" + parsed.positional[0] + "\"");
    return kExitUsage;
  }
  auto config = LoadConfig(parsed.Get("config", kDefaultConfigPath));
  if (!config.ok()) {
    PrintError(config.status().message());
    return kExitUsage;
  }
  if (!ApplyLogFormat(parsed, config->log_format)) return kExitUsage;
  if (!HasRepos(*config, parsed.Get("config", kDefaultConfigPath))) return kExitUsage;
  SignalWatcher signals;
  auto db = OpenDatabase(*config);
  if (!db.ok()) {
    PrintError(db.status().ToString());
    return kExitFailed;
  }
  return SyncAll(*config, db->get(), "once", parsed.Get("repo"), &signals);
}

int CmdRun(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent run [--config FILE]\n"
      "Runs as a daemon: syncs every repository each interval (with 10% jitter)\n"
      "until SIGTERM or SIGINT; SIGHUP reloads the config file.";
  std::vector<OptionSpec> specs = {kConfigOpt, kLogFormatOpt, kHelpOpt};
  ParsedArgs parsed;
  int code;
  if (!ParseOrExit(usage, args, specs, &parsed, &code)) return code;
  std::string path = parsed.Get("config", kDefaultConfigPath);
  auto loaded = LoadConfig(path);
  if (!loaded.ok()) {
    PrintError(loaded.status().message());
    return kExitUsage;
  }
  Config config = std::move(loaded).value();
  if (!ApplyLogFormat(parsed, config.log_format)) return kExitUsage;
  if (!HasRepos(config, path)) return kExitUsage;
  SignalWatcher signals;
  auto db = OpenDatabase(config);
  if (!db.ok()) {
    PrintError(db.status().ToString());
    return kExitFailed;
  }
  std::unique_ptr<MetricsEndpoint> metrics;
  if (config.metrics_port != 0) {
    metrics = std::make_unique<MetricsEndpoint>(config);
    Status ms = metrics->Start();
    if (!ms.ok()) {
      PrintError(ms.ToString() + " (change metrics_listen in " + path + ")");
      return kExitFailed;
    }
  }
  LogInfo("daemon started", {{"config", path},
                             {"repos", std::to_string(config.repos.size())},
                             {"interval", FormatDuration(config.interval)}});
  std::mt19937_64 rng(std::random_device{}());
  while (!signals.stop_requested()) {
    int rc = SyncAll(config, db->get(), "daemon", "", &signals);
    if (rc == kExitBusy) LogWarning("skipped this cycle: another run holds the lock");
    if (signals.stop_requested()) break;
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(config.interval.count()) * jitter(rng)));
    LogInfo("next sync",
            {{"in", FormatDuration(std::chrono::milliseconds(wait.count() / 1000 * 1000))}});
    auto until = std::chrono::steady_clock::now() + wait;
    while (!signals.stop_requested()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      signals.WaitFor(left);
      if (signals.TakeReload()) {
        auto fresh = LoadConfig(path);
        if (!fresh.ok()) {
          LogError("reload failed; keeping the previous config",
                   {{"error", fresh.status().message()}});
        } else if (fresh->state_dir != config.state_dir) {
          LogError("reload: state_dir cannot change while running; restart the daemon",
                   {{"state_dir", fresh->state_dir}});
        } else {
          config = std::move(fresh).value();
          if (metrics) metrics->SetConfig(config);
          LogFormat f;
          if (ParseLogFormat(config.log_format, &f) && !parsed.Has("log-format")) SetLogFormat(f);
          LogInfo("config reloaded", {{"repos", std::to_string(config.repos.size())},
                                      {"interval", FormatDuration(config.interval)}});
          break;  // sync now with the new config
        }
      }
    }
  }
  LogInfo("daemon stopped");
  return kExitOk;
}

int CmdStatus(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent status [--config FILE] [--json] [ORG/NAME]\n"
      "Shows per repository the active revision, the last run and whether it is\n"
      "stale. With a repository name, also its revisions and recent runs.\n"
      "Exits 1 when a repository's last run failed or it is stale.";
  std::vector<OptionSpec> specs = {
      kConfigOpt, {"json", false, "", "print JSON"}, kLogFormatOpt, kHelpOpt};
  ParsedArgs parsed;
  int code;
  if (!ParseOrExit(usage, args, specs, &parsed, &code)) return code;
  if (parsed.positional.size() > 1) {
    PrintError("status takes at most one repository name");
    return kExitUsage;
  }
  std::string repo = parsed.positional.empty() ? "" : parsed.positional[0];
  auto config = LoadConfig(parsed.Get("config", kDefaultConfigPath));
  if (!config.ok()) {
    PrintError(config.status().message());
    return kExitUsage;
  }
  StatusReport report;
  std::string db_path = DatabasePath(*config);
  if (!FileExists(Env::Default(), db_path)) {
    report = EmptyStatusReport(Env::Default(), *config, NowMs());
    if (!repo.empty()) {
      std::erase_if(report.repos, [&](const RepoStatus& r) { return r.name != repo; });
    }
  } else {
    auto db = StateDb::OpenReadOnly(db_path);
    if (!db.ok()) {
      PrintError(db.status().ToString());
      return kExitFailed;
    }
    auto built = BuildStatusReport(Env::Default(), db->get(), *config, repo, NowMs(),
                                   RunLock::IsHeldByAnyone(config->state_dir));
    if (!built.ok()) {
      PrintError(built.status().message());
      return kExitUsage;
    }
    report = std::move(built).value();
  }
  bool detail = !repo.empty();
  auto print = [](std::string_view piece) { std::fwrite(piece.data(), 1, piece.size(), stdout); };
  if (parsed.Has("json")) {
    WriteStatusJson(report, detail, print);
  } else {
    WriteStatusText(report, detail, print);
  }
  return report.healthy() ? kExitOk : kExitFailed;
}

int CmdPublish(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent publish DIR --repo ORG/NAME --out PUBLISH_ROOT [--revision ID]\n"
      "       sync-agent publish --git URL --ref REF --repo ORG/NAME --out PUBLISH_ROOT\n"
      "Publishes the files under DIR, or the commit REF of a git remote with its\n"
      "Git LFS objects, as a new revision of ORG/NAME under PUBLISH_ROOT/ORG/NAME/\n"
      "(objects, a manifest and the \"latest\" pointer). A git revision is named\n"
      "by its commit id. If nothing changed since the latest revision, nothing is\n"
      "published. The git cache is kept in .<PUBLISH_ROOT's name>.git-work beside\n"
      "PUBLISH_ROOT; an LFS authorization header may also come from the\n"
      "SYNC_AGENT_LFS_AUTHORIZATION environment variable.";
  std::vector<OptionSpec> specs = {
      {"repo", true, "ORG/NAME", "repository name"},
      {"out", true, "DIR", "publish root served to nodes"},
      {"revision", true, "ID", "revision id to use (default: time and content hash)"},
      {"allow-unchanged", false, "", "publish a new revision even if nothing changed"},
      {"delta-depth", true, "N",
       "publish deltas from the previous N revisions of each large file (default 2, 0: none)"},
      {"signature-min-size", true, "SIZE",
       "files from this size on get a signature for block matching (default 1MiB)"},
      {"git", true, "URL", "publish from this git remote (URL, local path or file://)"},
      {"ref", true, "REF", "with --git: branch, tag or commit id (default main)"},
      {"lfs-authorization", true, "VALUE", "with --git: Authorization header for Git LFS"},
      {"sign-key", true, "KEY",
       "sign the revision with this ed25519 private key (from `sync-agent keygen`)"},
      kLogFormatOpt,
      kHelpOpt};
  ParsedArgs parsed;
  int code;
  if (!ParseOrExit(usage, args, specs, &parsed, &code)) return code;
  if (!ApplyLogFormat(parsed, "")) return kExitUsage;
  const bool from_git = parsed.Has("git");
  if (parsed.positional.size() != (from_git ? 0u : 1u) || !parsed.Has("repo") ||
      !parsed.Has("out")) {
    PrintError(from_git ? "publish --git needs --repo and --out, and no DIR"
                        : "publish needs DIR (or --git URL), --repo and --out");
    std::fprintf(stderr, "%s\n", usage.c_str());
    return kExitUsage;
  }
  PublishOptions opt;
  opt.input_dir = from_git ? "" : parsed.positional[0];
  opt.repo = parsed.Get("repo");
  opt.out_root = parsed.Get("out");
  opt.revision = parsed.Get("revision");
  opt.allow_unchanged = parsed.Has("allow-unchanged");
  if (parsed.Has("delta-depth")) {
    std::string v = parsed.Get("delta-depth");
    if (v.empty() || v.size() > 2 || v.find_first_not_of("0123456789") != std::string::npos) {
      PrintError("--delta-depth must be a number from 0 to 99, not \"" + v + "\"");
      return kExitUsage;
    }
    opt.deltas.delta_depth = std::stoi(v);
  }
  if (parsed.Has("signature-min-size")) {
    auto size = ParseByteSize(parsed.Get("signature-min-size"));
    if (!size.ok()) {
      PrintError("--signature-min-size: " + size.status().message());
      return kExitUsage;
    }
    opt.deltas.signature_min_size = *size;
  }
  if (parsed.Has("sign-key")) {
    auto key = PrivateKey::Load(Env::Default(), parsed.Get("sign-key"));
    if (!key.ok()) {
      PrintError(key.status().ToString());
      return kExitUsage;
    }
    opt.sign_keys.push_back(std::move(key).value());
  }
  auto r = [&]() -> Result<PublishResult> {
    if (!from_git) return PublishDirectory(Env::Default(), opt);
    GitPublishOptions g;
    g.url = parsed.Get("git");
    g.ref = parsed.Has("ref") ? parsed.Get("ref") : "main";
    g.lfs_authorization = parsed.Get("lfs-authorization");
    if (g.lfs_authorization.empty()) {
      const char* env = std::getenv("SYNC_AGENT_LFS_AUTHORIZATION");
      if (env != nullptr) g.lfs_authorization = env;
    }
    g.publish = opt;
    SA_ASSIGN_OR_RETURN(GitPublishResult published, PublishGitRevision(Env::Default(), g));
    for (const std::string& w : published.warnings) LogWarning(w, {{"git", g.url}});
    return std::move(published.published);
  }();
  if (!r.ok()) {
    PrintError(r.status().ToString());
    return r.status().code() == Status::Code::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  const Manifest& m = r->manifest;
  if (r->unchanged) {
    std::printf("%s unchanged: latest revision %s already has this content (%zu files, %s)\n",
                m.repo.c_str(), m.revision.c_str(), m.files.size(),
                FormatBytes(m.TotalBytes()).c_str());
    return kExitOk;
  }
  const DeltaPublishStats& ds = r->delta_stats;
  std::printf(
      "published %s revision %s: %zu files, %s; wrote %llu objects (%s), reused %llu (%s); "
      "wrote %llu signatures and %llu deltas (%s)\n",
      m.repo.c_str(), m.revision.c_str(), m.files.size(), FormatBytes(m.TotalBytes()).c_str(),
      static_cast<unsigned long long>(r->objects_written), FormatBytes(r->bytes_written).c_str(),
      static_cast<unsigned long long>(r->objects_reused), FormatBytes(r->bytes_reused).c_str(),
      static_cast<unsigned long long>(ds.signatures_written),
      static_cast<unsigned long long>(ds.deltas_written), FormatBytes(ds.bytes_written).c_str());
  for (const PrivateKey& key : opt.sign_keys) {
    std::printf("signed %s revision %s with %s\n", m.repo.c_str(), m.revision.c_str(),
                key.public_key().id().c_str());
  }
  return kExitOk;
}

int CmdVerify(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent verify [--config FILE] [ORG/NAME] [--repair] [--full]\n"
      "Checks the served revisions and the object store against the database, by\n"
      "size and xxh3-128 (by sha256 with --full), and prints every missing, damaged\n"
      "or unexpected file. --repair fetches the right content from the sources and\n"
      "swaps in a rebuilt revision, never writing a served file in place. Exits 0\n"
      "when all is well (or was repaired), 1 when damage remains, 75 if a sync\n"
      "holds the lock.";
  std::vector<OptionSpec> specs = {
      kConfigOpt,
      kLogFormatOpt,
      {"repair", false, "", "repair what is damaged or missing from the sources"},
      {"full", false, "", "compare sha256 instead of size and xxh3-128"},
      {"full-every", true, "DURATION",
       "compare sha256 when the last full verify is older than this (e.g. 30d)"},
      kHelpOpt};
  ParsedArgs parsed;
  int code;
  if (!ParseOrExit(usage, args, specs, &parsed, &code)) return code;
  if (parsed.positional.size() > 1) {
    PrintError("verify takes at most one ORG/NAME");
    return kExitUsage;
  }
  const std::string only = parsed.positional.empty() ? "" : parsed.positional[0];
  std::optional<std::chrono::milliseconds> full_every;
  if (parsed.Has("full-every")) {
    auto d = ParseDuration(parsed.Get("full-every"));
    if (!d.ok()) {
      PrintError("--full-every: " + d.status().message());
      return kExitUsage;
    }
    full_every = *d;
  }
  auto config = LoadConfig(parsed.Get("config", kDefaultConfigPath));
  if (!config.ok()) {
    PrintError(config.status().message());
    return kExitUsage;
  }
  if (!ApplyLogFormat(parsed, config->log_format)) return kExitUsage;
  SignalWatcher signals;
  auto db = OpenDatabase(*config);
  if (!db.ok()) {
    PrintError(db.status().ToString());
    return kExitFailed;
  }
  // No sync may change the trees while they are read (or repaired).
  RunLock lock;
  Status s = lock.TryAcquire(config->state_dir);
  if (!s.ok()) {
    PrintError(s.message());
    return s.code() == Status::Code::kBusy ? kExitBusy : kExitFailed;
  }
  auto configured = ConfiguredAndFollowedRepos(db->get(), *config);
  if (!configured.ok()) {
    PrintError(configured.status().ToString());
    return kExitFailed;
  }
  std::vector<std::string> repos;
  for (const RepoConfig& rc : *configured) {
    if (only.empty() || rc.name == only || rc.local_name() == only)
      repos.push_back(rc.local_name());
  }
  if (!only.empty() && repos.empty()) {
    PrintError("repository " + only + " is not in " + config->path);
    return kExitUsage;
  }
  VerifyOptions options;
  options.repos = repos;
  options.whole_store = only.empty();
  options.full = parsed.Has("full");
  if (!options.full && full_every) {
    for (const std::string& repo : repos) {
      auto last = (*db)->LastVerification(repo, /*full_only=*/true);
      if (!last.ok() || !*last || NowMs() - (*last)->finished_at_ms > full_every->count()) {
        options.full = true;
      }
    }
  }
  Verifier verifier(Env::Default(), db->get(), config->state_dir, config->mirror_root);
  auto report = verifier.Run(options);
  if (!report.ok()) {
    PrintError(report.status().ToString());
    return kExitFailed;
  }
  for (const VerifyProblem& p : report->problems) std::printf("%s\n", p.ToString().c_str());
  const VerifyCounts& t = report->total;
  std::printf(
      "verified %zu repositories (%s): %llu files and objects, %s hashed: %llu missing, "
      "%llu damaged, %llu unexpected\n",
      repos.size(), options.full ? "sha256" : "size and xxh3-128",
      static_cast<unsigned long long>(t.files_checked), FormatBytes(t.bytes_hashed).c_str(),
      static_cast<unsigned long long>(t.missing), static_cast<unsigned long long>(t.damaged),
      static_cast<unsigned long long>(t.unexpected));

  std::map<std::string, uint64_t> repaired;
  bool damage_left = !report->ok();
  if (parsed.Has("repair") && !report->ok()) {
    SyncEngine engine(Env::Default(), db->get(),
                      EngineOptions(*config, "repair", signals.stop_flag()));
    std::vector<std::string> fixed;
    for (const RepoConfig& rc : *configured) {
      const std::string name = rc.local_name();
      bool has = std::any_of(report->problems.begin(), report->problems.end(),
                             [&](const VerifyProblem& p) { return p.repo == name; });
      if (!has) continue;
      auto r = engine.Repair(rc, report->problems);
      if (!r.ok()) {
        PrintError("could not repair " + name + ": " + r.status().ToString());
        continue;
      }
      repaired[name] = r->problems;
      fixed.push_back(name);
      std::string rebuilt;
      for (const std::string& rev : r->rebuilt) rebuilt += (rebuilt.empty() ? "" : ", ") + rev;
      std::printf("repaired %s: fetched %llu %s (%s) again, rebuilt and swapped in %s\n",
                  name.c_str(), static_cast<unsigned long long>(r->contents_fetched),
                  r->contents_fetched == 1 ? "content" : "contents",
                  FormatBytes(r->bytes_fetched).c_str(),
                  rebuilt.empty() ? "nothing" : rebuilt.c_str());
    }
    // What --repair leaves: the store's files no revision knows, and what failed.
    VerifyOptions again = options;
    again.full = true;
    auto after = verifier.Run(again);
    if (!after.ok()) {
      PrintError(after.status().ToString());
      return kExitFailed;
    }
    damage_left = false;
    for (const VerifyProblem& p : after->problems) {
      if (p.repo.empty() && p.kind == ProblemKind::kUnexpected) {
        std::printf("left in place: %s\n", p.ToString().c_str());
        continue;
      }
      std::printf("still %s\n", p.ToString().c_str());
      damage_left = true;
      if (repaired.count(p.repo) && repaired[p.repo] > 0) repaired[p.repo]--;
    }
  }
  for (const VerificationRow& row : VerificationRows(*report, repaired)) {
    auto id = (*db)->RecordVerification(row);
    if (!id.ok())
      LogWarning("could not record the verification", {{"error", id.status().ToString()}});
  }
  if (damage_left) {
    std::fprintf(stderr, "sync-agent: verify found damage%s; run `sync-agent verify --repair`%s\n",
                 parsed.Has("repair") ? " that it could not repair" : "",
                 parsed.Has("repair") ? " again once the sources answer" : " to fix it");
  }
  return damage_left ? kExitFailed : kExitOk;
}

int CmdKeygen(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent keygen --out KEY\n"
      "Makes an ed25519 key pair for signing revisions (publish --sign-key KEY):\n"
      "the private key in KEY (PEM, mode 0600) and its public key in KEY.pub.\n"
      "Prints the public key as nodes list it in trusted_keys. Never overwrites\n"
      "an existing file.";
  std::vector<OptionSpec> specs = {{"out", true, "KEY", "where to write the private key"},
                                   kHelpOpt};
  ParsedArgs parsed;
  int code;
  if (!ParseOrExit(usage, args, specs, &parsed, &code)) return code;
  if (!parsed.positional.empty() || !parsed.Has("out") || parsed.Get("out").empty()) {
    PrintError("keygen needs --out KEY and nothing else");
    std::fprintf(stderr, "%s\n", usage.c_str());
    return kExitUsage;
  }
  const std::string path = parsed.Get("out");
  auto key = GenerateKeyFiles(Env::Default(), path);
  if (!key.ok()) {
    PrintError(key.status().ToString());
    return key.status().code() == Status::Code::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  std::fprintf(stderr, "wrote the private key to %s and the public key to %s.pub\n", path.c_str(),
               path.c_str());
  std::printf("%s\n", key->id().c_str());
  return kExitOk;
}

namespace {

// What pin and unpin share: the command line (positional names the
// arguments it needs), the config and the database.
struct PinCommand {
  ParsedArgs parsed;
  Config config;
  std::unique_ptr<StateDb> db;
};

bool OpenPinCommand(const std::string& usage, const std::vector<std::string>& args,
                    size_t positional, const char* needs, PinCommand* cmd, int* code) {
  std::vector<OptionSpec> specs = {kConfigOpt, kLogFormatOpt, kHelpOpt};
  if (!ParseOrExit(usage, args, specs, &cmd->parsed, code)) return false;
  *code = kExitUsage;
  if (cmd->parsed.positional.size() != positional) {
    PrintError(needs);
    std::fprintf(stderr, "%s\n", usage.c_str());
    return false;
  }
  auto config = LoadConfig(cmd->parsed.Get("config", kDefaultConfigPath));
  if (!config.ok()) {
    PrintError(config.status().message());
    return false;
  }
  cmd->config = std::move(config).value();
  if (!ApplyLogFormat(cmd->parsed, cmd->config.log_format)) return false;
  auto db = OpenDatabase(cmd->config);
  if (!db.ok()) {
    PrintError(db.status().ToString());
    *code = kExitFailed;
    return false;
  }
  cmd->db = std::move(db).value();
  return true;
}

}  // namespace

int CmdPin(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent pin ORG/NAME REVISION [--config FILE]\n"
      "Serves REVISION (a revision the node still holds, or a unique prefix of one)\n"
      "in place of the current one, in one atomic swap, and keeps it served: later\n"
      "runs still poll and fetch new revisions but do not serve them until\n"
      "`sync-agent unpin ORG/NAME`. Exits 1 if the node does not hold REVISION\n"
      "(the message lists the revisions it holds).";
  PinCommand cmd;
  int code;
  if (!OpenPinCommand(usage, args, 2, "pin needs ORG/NAME and REVISION", &cmd, &code)) return code;
  const std::string& repo = cmd.parsed.positional[0];
  auto pinned =
      PinRevision(Env::Default(), cmd.db.get(), {cmd.config.mirror_root, cmd.config.state_dir},
                  repo, cmd.parsed.positional[1], NowMs());
  if (!pinned.ok()) {
    PrintError(pinned.status().message());
    return kExitFailed;
  }
  LogInfo("pinned",
          {{"repo", repo},
           {"revision", pinned->revision},
           {"was_serving", pinned->was_serving.empty() ? "(none)" : pinned->was_serving}});
  std::printf("%s pinned to %s", repo.c_str(), pinned->revision.c_str());
  if (pinned->swapped) {
    std::printf(" (was serving %s)",
                pinned->was_serving.empty() ? "nothing" : pinned->was_serving.c_str());
  } else {
    std::printf(" (already served)");
  }
  std::printf("; runs keep it served until `sync-agent unpin %s`\n", repo.c_str());
  return kExitOk;
}

int CmdUnpin(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: sync-agent unpin ORG/NAME [--config FILE]\n"
      "Removes the pin of ORG/NAME: the next run serves the latest revision again\n"
      "(without fetching it again if the node holds it already).";
  PinCommand cmd;
  int code;
  if (!OpenPinCommand(usage, args, 1, "unpin needs ORG/NAME", &cmd, &code)) return code;
  const std::string& repo = cmd.parsed.positional[0];
  auto removed = Unpin(cmd.db.get(), repo);
  if (!removed.ok()) {
    PrintError(removed.status().ToString());
    return kExitFailed;
  }
  if (!*removed) {
    std::printf("%s was not pinned; nothing changed\n", repo.c_str());
    return kExitOk;
  }
  LogInfo("unpinned", {{"repo", repo}, {"was_pinned_to", (*removed)->revision}});
  std::printf("%s unpinned (was pinned to %s); the next run serves the latest revision\n",
              repo.c_str(), (*removed)->revision.c_str());
  return kExitOk;
}

}  // namespace sync_agent
