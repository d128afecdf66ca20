// hub_bench_server: HubServer (tests/support/hub_server.h) as a standalone
// process, for scripts/bench-hub: a stand-in for huggingface.co and its CDN
// on loopback, serving one repository made of local files.
//
//   hub_bench_server --repo ORG/NAME [--cdn-host 127.0.0.2] [--external-cdn URL]
//                    FILE=PATH[:lfs]...
// With --external-cdn, LFS files are redirected to URL/repos/<aa>/<bb>/<sha256>
// (an nginx the caller runs) instead of the built-in CDN listener.
//
// Prints "hub=<url> cdn=<url> sha=<commit>" on one line once both listeners
// accept connections, then serves until its standard input closes.
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "tests/support/hub_server.h"
#include "tests/support/test_util.h"

int main(int argc, char** argv) {
  using sync_agent::testing::HubServer;
  std::string repo;
  HubServer::Options options;
  std::map<std::string, HubServer::File> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--repo" && i + 1 < argc) {
      repo = argv[++i];
    } else if (arg == "--cdn-host" && i + 1 < argc) {
      options.cdn_host = argv[++i];
    } else if (arg == "--external-cdn" && i + 1 < argc) {
      options.external_cdn_url = argv[++i];
    } else if (arg.find('=') != std::string::npos) {
      std::string path = arg.substr(0, arg.find('='));
      std::string local = arg.substr(arg.find('=') + 1);
      bool lfs = local.size() > 4 && local.compare(local.size() - 4, 4, ":lfs") == 0;
      if (lfs) local.resize(local.size() - 4);
      files[path] = {sync_agent::testing::ReadFile(local), lfs};
    } else {
      std::fprintf(stderr,
                   "usage: hub_bench_server --repo ORG/NAME [--cdn-host H] FILE=PATH[:lfs]...\n");
      return 2;
    }
  }
  if (repo.empty() || files.empty()) {
    std::fprintf(stderr, "hub_bench_server: --repo and at least one FILE=PATH are needed\n");
    return 2;
  }
  HubServer hub(options);
  const std::string sha =
      hub.Commit(repo, sync_agent::testing::RepoType::kModel, "main", files, "bench");
  std::printf("hub=%s cdn=%s sha=%s\n", hub.url().c_str(), hub.cdn_url().c_str(), sha.c_str());
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return 0;
}
