// The real @huggingface/hub npm client as a test client: runs
// tests/js/hub_client_check.mjs under Node against a hub (HubServer, or a
// node serving the Hub API) and reports whether every check passed.
//
// The npm client is installed by scripts/test (sa_install_js_clients, which
// runs `npm ci` in tests/js); tests skip when it is not there.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/hub_server.h"
#include "tests/support/test_util.h"

namespace sync_agent::testing {

// One run of the client over one repository at one revision.
struct HubJsCheck {
  std::string hub_url;  // as `hubUrl`, e.g. HubServer::url()
  std::string repo;     // "org/name"
  RepoType type = RepoType::kModel;
  // The revision every call asks for; nullopt leaves each call its default
  // (modelInfo's "HEAD", the others' "main").
  std::optional<std::string> revision;
  // The commit the revision must resolve to; a 40-hex revision implies it.
  std::optional<std::string> sha;
  std::optional<std::string> access_token;  // must start with "hf_" (the client insists)
  std::string cache_dir;                    // snapshotDownload's cache; made if missing
  // Every file of the revision, path -> content (sent as sha256 and size):
  // the listing and the snapshot must hold exactly these.
  std::map<std::string, std::string> files;
  std::vector<std::string> missing;   // paths that must not be found
  std::chrono::seconds timeout{120};  // for the whole run, enforced by the script
};

// True if Node (18 or later) is on PATH and tests/js/node_modules holds
// @huggingface/hub. On false, *why (when not null) says what is missing and
// how to install it.
bool HubJsClientAvailable(std::string* why);

// Runs the check and waits for it. exit_code is 0 when every check passed,
// 1 when one failed (err has a "FAIL step/check: why" line for each), 2 when
// the check was malformed; out is the script's JSON report, with the HTTP
// requests the client made in each step. Call HubJsClientAvailable first.
ProcessResult RunHubJsClient(const HubJsCheck& check);

}  // namespace sync_agent::testing
