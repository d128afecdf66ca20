#include "tests/support/agent_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/hash/content_hasher.h"
#include "common/manifest/manifest.h"

namespace sync_agent::testing {

bool WaitForPort(int port) {
  return WaitFor([port] { return AcceptsConnections(port); });
}

AgentFixture::AgentFixture() {
  model_ = tmp_.Sub("model");
  pub_ = tmp_.Sub("pub");
  state_ = tmp_.Sub("state");
  mirror_ = tmp_.Sub("mirror");
  config_ = tmp_.Sub("sync-agent.toml");
  MakeDirs(model_);
  MakeDirs(pub_);
}

AgentFixture::~AgentFixture() {
  if (server_) {
    server_->Signal(SIGTERM);
    server_->Wait();
  }
}

std::string AgentFixture::Publish(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"publish", model_, "--repo", kRepo, "--out", pub_};
  args.insert(args.end(), extra.begin(), extra.end());
  ProcessResult r = RunAgent(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // "published acme/llm-7b revision <id>: ..."
  std::string marker = "revision ";
  size_t pos = r.out.find(marker);
  if (pos == std::string::npos) return "";
  size_t start = pos + marker.size();
  size_t end = r.out.find_first_of(": ", start);
  return r.out.substr(start, end - start);
}

std::string AgentFixture::StartBuiltinServer() {
  int port = FreeLoopbackPort();
  server_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{
      AgentBinary(), "serve", pub_, "--listen", "127.0.0.1:" + std::to_string(port), "--access-log",
      tmp_.Sub("serve-access.log")});
  EXPECT_TRUE(WaitForPort(port)) << server_->Stderr();
  return "http://127.0.0.1:" + std::to_string(port);
}

namespace {

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

}  // namespace

std::string AgentFixture::StartHubNginx(int node_port) {
  std::string conf = ReadFile(std::string(SA_SOURCE_DIR) + "/scripts/nginx-hub.conf.example");
  conf = ReplaceAll(conf, "listen [::]:80;", "");
  conf = ReplaceAll(conf, "listen 80;", "listen 127.0.0.1:@PORT@;");
  conf = ReplaceAll(conf, "/srv/mirror", mirror_);
  conf = ReplaceAll(conf, "127.0.0.1:8081", "127.0.0.1:" + std::to_string(node_port));
  NginxServer::Options o;
  o.root = mirror_;
  o.http_blocks = conf;
  nginx_ = std::make_unique<NginxServer>(o);
  std::string error;
  if (!nginx_->Start(&error)) {
    ADD_FAILURE() << "nginx did not start: " << error;
    return "";
  }
  return nginx_->url();
}

std::string AgentFixture::StartNginx(const std::string& limit_rate) {
  NginxServer::Options o;
  o.limit_rate = limit_rate;
  return StartNginx(o);
}

std::string AgentFixture::StartNginx(NginxServer::Options o) {
  o.root = pub_;
  nginx_ = std::make_unique<NginxServer>(o);
  std::string error;
  if (!nginx_->Start(&error)) {
    ADD_FAILURE() << "nginx did not start: " << error;
    return "";
  }
  return nginx_->url();
}

void AgentFixture::WriteConfig(const std::vector<std::string>& sources, const std::string& extra) {
  std::string text = "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ + "\"\n" +
                     "interval = \"1m\"\n" + extra + "\n[[repo]]\nname = \"" + kRepo +
                     "\"\nsources = [";
  for (size_t i = 0; i < sources.size(); ++i) {
    text += (i ? ", \"" : "\"") + sources[i] + "\"";
  }
  text += "]\n";
  WriteFile(config_, text);
}

void AgentFixture::WriteGitConfig(const std::string& git, const std::string& ref,
                                  const std::string& repo_extra, const std::string& top_extra) {
  WriteFile(config_, "state_dir = \"" + state_ + "\"\nmirror_root = \"" + mirror_ +
                         "\"\ninterval = \"1m\"\n" + top_extra + "\n[[repo]]\nname = \"" + kRepo +
                         "\"\ngit = \"" + git + "\"\nref = \"" + ref + "\"\n" + repo_extra);
}

ProcessResult AgentFixture::Once(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--once", "--config", config_};
  args.insert(args.end(), extra.begin(), extra.end());
  return RunAgent(args);
}

ProcessResult AgentFixture::Status(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"status", "--config", config_};
  args.insert(args.end(), extra.begin(), extra.end());
  return RunAgent(args);
}

std::string AgentFixture::ServedRevision() const {
  char buf[4096];
  ssize_t n = ::readlink(Served().c_str(), buf, sizeof buf);
  if (n <= 0) return "";
  std::string target(buf, static_cast<size_t>(n));
  return target.substr(target.rfind('/') + 1);
}

std::string AgentFixture::ObjectUri(const std::string& content) const {
  return std::string("/") + kRepo + "/" + PublishedObjectPath(Sha256Hex(content));
}

std::string AgentFixture::Sql(const std::string& sql) {
  ProcessResult r = RunProcess({"/usr/bin/sqlite3", state_ + "/state.db", sql});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.out;
}

std::string AgentFixture::PartialPath(const std::string& content) const {
  return state_ + "/partial/" + Sha256Hex(content) + ".part";
}

std::vector<uint64_t> AgentFixture::CompletedChunkOffsets(const std::string& content) const {
  std::string record = ReadFile(PartialPath(content) + ".ranges");
  std::vector<uint64_t> out;
  size_t nl = record.find('\n');
  if (nl == std::string::npos) return out;
  unsigned long long size = 0, chunk = 0;
  if (std::sscanf(record.c_str(), "sync-agent-ranges 1 %llu %llu", &size, &chunk) != 2) return out;
  for (size_t at = nl + 1; at < record.size();) {
    size_t end = record.find('\n', at);
    if (end == std::string::npos) break;
    out.push_back(std::stoull(record.substr(at, end - at)) * chunk);
    at = end + 1;
  }
  return out;
}

}  // namespace sync_agent::testing
