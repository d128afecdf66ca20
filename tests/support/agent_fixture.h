// AgentFixture: a node and an origin in one temporary directory, driven
// through the real sync-agent binary: a model directory, a publish root
// (served by the built-in server or a real nginx), a config file, a state
// directory and a mirror root.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/nginx_server.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {

class AgentFixture : public ::testing::Test {
 protected:
  static constexpr const char* kRepo = "acme/llm-7b";

  AgentFixture();
  ~AgentFixture() override;

  // Publishes model_ as a new revision; returns its id (fails the test on error).
  std::string Publish(const std::vector<std::string>& extra = {});
  // Starts `sync-agent serve` on the publish root; returns its base URL.
  std::string StartBuiltinServer();
  // Starts a real nginx on the publish root; returns its base URL. Skips the
  // test (with the reason) if nginx is not installed.
  std::string StartNginx(const std::string& limit_rate = "");
  // The same with these options (root is set to the publish root).
  std::string StartNginx(NginxServer::Options options);
  // Starts a real nginx with the shipped scripts/nginx-hub.conf.example in
  // front of a node's Hub API listening on node_port (its listen address,
  // root and upstream replaced: the mirror root); returns its base URL.
  // Fails the test when nginx does not start.
  std::string StartHubNginx(int node_port);
  // Writes the config with these sources for kRepo plus extra top-level TOML.
  void WriteConfig(const std::vector<std::string>& sources, const std::string& extra = "");
  // Writes the config with kRepo taken from a git remote at ref; repo_extra
  // is more TOML for the [[repo]] table (e.g. an authorization line).
  // top_extra is more top-level TOML (e.g. retry_attempts).
  void WriteGitConfig(const std::string& git, const std::string& ref,
                      const std::string& repo_extra = "", const std::string& top_extra = "");
  ProcessResult Once(const std::vector<std::string>& extra = {});
  ProcessResult Status(const std::vector<std::string>& extra = {});
  std::vector<std::string> ConfigArgs() const { return {"--config", config_}; }
  // Runs SQL on the node's state database with the sqlite3 tool (the test
  // must skip without /usr/bin/sqlite3); its output without the final newline.
  std::string Sql(const std::string& sql);

  std::string Served() const { return mirror_ + "/" + kRepo; }
  std::string ServedRevision() const;                       // "" if nothing is served
  std::string ObjectUri(const std::string& content) const;  // "/acme/llm-7b/objects/.."
  std::string PartialPath(const std::string& content) const;
  // The byte offsets of the chunks a download in chunks has completed, from
  // its record next to the partial file (empty when there is none).
  std::vector<uint64_t> CompletedChunkOffsets(const std::string& content) const;

  TempDir tmp_{/*world_readable=*/true};
  std::string model_, pub_, state_, mirror_, config_;
  std::unique_ptr<BackgroundProcess> server_;
  std::unique_ptr<NginxServer> nginx_;
};

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool WaitForPort(int port);

}  // namespace sync_agent::testing
