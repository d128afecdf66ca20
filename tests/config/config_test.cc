#include "common/config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "common/git/git_source.h"
#include "common/hub/hub_source.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

const GitSpec& Git(const RepoConfig& repo) { return dynamic_cast<const GitSpec&>(*repo.source); }

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kPath = "/etc/sync-agent/sync-agent.toml";

// The example from README.md, comments included.
constexpr const char* kFullExample =
    R"(state_dir      = "/var/lib/sync-agent"   # SQLite database, staging, object store
mirror_root    = "/srv/mirror"           # served tree: <mirror_root>/<org/name>/<path>
interval       = "5m"
stale_after    = "15m"                   # optional, default 3 x interval
keep_revisions = 2
log_format     = "plain"                 # or "json"
http_timeout   = "60s"
[[repo]]
name    = "acme/llm-7b"
sources = ["http://origin.example.net/models", "file:///data/published"]
)";

// A minimal valid [[repo]] to append to documents under test.
constexpr const char* kRepo = R"(
[[repo]]
name = "acme/llm-7b"
sources = ["http://origin.example.net/models"]
)";

Status ParseError(const std::string& text) {
  Result<Config> r = ParseConfig(text, kPath);
  EXPECT_FALSE(r.ok()) << "accepted:\n" << text;
  return r.status();
}

TEST(ConfigTest, FullExample) {
  Result<Config> r = ParseConfig(kFullExample, kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = *r;
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.state_dir, "/var/lib/sync-agent");
  EXPECT_EQ(c.mirror_root, "/srv/mirror");
  EXPECT_EQ(c.interval, minutes(5));
  EXPECT_EQ(c.stale_after, minutes(15));
  EXPECT_EQ(c.keep_revisions, 2);
  EXPECT_EQ(c.log_format, "plain");
  EXPECT_EQ(c.http_timeout, seconds(60));
  ASSERT_EQ(c.repos.size(), 1u);
  EXPECT_EQ(c.repos[0].name, "acme/llm-7b");
  EXPECT_THAT(c.repos[0].source->urls(),
              ::testing::ElementsAre("http://origin.example.net/models", "file:///data/published"));
}

TEST(ConfigTest, EmptyFileGivesDefaultsAndNoRepos) {
  Result<Config> r = ParseConfig("# nothing configured yet\n", "/tmp/x.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Config& c = *r;
  EXPECT_EQ(c.path, "/tmp/x.toml");
  EXPECT_EQ(c.state_dir, "/var/lib/sync-agent");
  EXPECT_EQ(c.mirror_root, "/srv/mirror");
  EXPECT_EQ(c.interval, minutes(5));
  EXPECT_EQ(c.stale_after, minutes(15));
  EXPECT_EQ(c.keep_revisions, 2);
  EXPECT_EQ(c.log_format, "plain");
  EXPECT_EQ(c.http_timeout, seconds(60));
  EXPECT_TRUE(c.repos.empty());
}

TEST(ConfigTest, EmptyRepoArrayIsZeroRepos) {
  Result<Config> r = ParseConfig("repo = []\n", kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->repos.empty());
}

TEST(ConfigTest, StaleAfterDefaultsToThreeIntervals) {
  Result<Config> r = ParseConfig("interval = \"2m\"\n", kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->interval, minutes(2));
  EXPECT_EQ(r->stale_after, minutes(6));
}

TEST(ConfigTest, ExplicitStaleAfterIsKept) {
  Result<Config> r = ParseConfig("interval = \"90s\"\nstale_after = \"1h\"\n", kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->interval, seconds(90));
  EXPECT_EQ(r->stale_after, minutes(60));
}

TEST(ConfigTest, OtherValuesAccepted) {
  Result<Config> r = ParseConfig(
      "keep_revisions = 100\nlog_format = \"json\"\nhttp_timeout = \"1s\"\ninterval = \"1s\"\n",
      kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->keep_revisions, 100);
  EXPECT_EQ(r->log_format, "json");
  EXPECT_EQ(r->http_timeout, seconds(1));
  EXPECT_EQ(r->interval, seconds(1));
  EXPECT_EQ(r->stale_after, seconds(3));
}

TEST(ConfigTest, TheMinimumTransferRate) {
  Result<Config> d = ParseConfig("", kPath);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->http_low_speed_limit, 1024u);
  EXPECT_EQ(d->http_low_speed_time, seconds(60));
  Result<Config> r =
      ParseConfig("http_low_speed_limit = \"100KiB/s\"\nhttp_low_speed_time = \"2m\"\n", kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->http_low_speed_limit, 100u * 1024);
  EXPECT_EQ(r->http_low_speed_time, minutes(2));
  Result<Config> off = ParseConfig("http_low_speed_limit = \"0\"\n", kPath);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->http_low_speed_limit, 0u);
}

TEST(ConfigTest, DirectoriesAreNormalized) {
  Result<Config> r = ParseConfig(
      "state_dir = \"/var//lib/./sync-agent/\"\nmirror_root = \"/srv/mirror///\"\n", kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->state_dir, "/var/lib/sync-agent");
  EXPECT_EQ(r->mirror_root, "/srv/mirror");
}

TEST(ConfigTest, SourcesAreNormalized) {
  Result<Config> r = ParseConfig(R"([[repo]]
name = "acme/a"
sources = ["HTTP://origin.example.net:8080/models/", "https://cdn.example.net/", "file:///data//published/"]
[[repo]]
name = "acme/b"
sources = ["http://origin.example.net/models"]
)",
                                 kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->repos.size(), 2u);
  EXPECT_THAT(r->repos[0].source->urls(),
              ::testing::ElementsAre("http://origin.example.net:8080/models",
                                     "https://cdn.example.net", "file:///data/published"));
  EXPECT_EQ(r->repos[1].name, "acme/b");
  // The same source in two repositories is fine.
  EXPECT_THAT(r->repos[1].source->urls(),
              ::testing::ElementsAre("http://origin.example.net/models"));
}

TEST(ConfigTest, InlineTablesInRepoArrayAreAccepted) {
  Result<Config> r =
      ParseConfig("repo = [{ name = \"acme/x\", sources = [\"file:///data/p\"] }]\n", kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->repos.size(), 1u);
  EXPECT_EQ(r->repos[0].name, "acme/x");
}

TEST(ConfigTest, UnknownTopLevelKeyNamesKeyLineAndSuggestion) {
  Status s = ParseError(R"(state_dir      = "/var/lib/sync-agent"
mirror_root    = "/srv/mirror"

# comment


intreval       = "5m"
)");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":7: unknown key \"intreval\""));
  EXPECT_THAT(s.message(), HasSubstr("did you mean \"interval\"?"));
  EXPECT_THAT(
      s.message(),
      HasSubstr("(known keys: state_dir, mirror_root, interval, stale_after, "
                "keep_revisions, log_format, http_timeout, connections_per_file, "
                "connections_total, bandwidth_limit, bandwidth_schedule, ca_file, "
                "progress_interval, retry_attempts, serve_max_connections, "
                "serve_max_connections_per_address, serve_request_timeout, "
                "serve_keep_alive_timeout, http_low_speed_limit, "
                "http_low_speed_time, trusted_keys, manifest_max_files, manifest_max_bytes, "
                "prune_missing, org_max_repos, metrics_textfile, metrics_listen, repo)"));
}

TEST(ConfigTest, UnknownKeyReportsTheFirstInFileOrder) {
  // "zzz" sorts after "aaa" but comes first in the file.
  Status s = ParseError("zzz = 1\naaa = 2\n");
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":1: unknown key \"zzz\""));
  EXPECT_THAT(s.message(), Not(HasSubstr("did you mean")));
}

TEST(ConfigTest, GitRepositories) {
  Result<Config> r = ParseConfig(R"(
[[repo]]
name = "acme/llm-7b"
git  = "https://git.example.net/acme/llm-7b.git/"
ref  = "v1.0"
authorization = "Bearer abc"
[[repo]]
name = "acme/local"
git  = "/srv/git//local.git"
[[repo]]
name = "acme/file"
git  = "file:///srv/git/file.git"
)",
                                 kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->repos.size(), 3u);
  EXPECT_EQ(Git(r->repos[0]).remote(), "https://git.example.net/acme/llm-7b.git");
  EXPECT_EQ(Git(r->repos[0]).ref(), "v1.0");
  EXPECT_EQ(r->repos[0].authorization, "Bearer abc");
  EXPECT_STREQ(r->repos[0].source->kind(), "git");  // no publish roots
  EXPECT_EQ(Git(r->repos[1]).remote(), "/srv/git/local.git");
  EXPECT_EQ(Git(r->repos[1]).ref(), "main");  // the default
  EXPECT_EQ(Git(r->repos[2]).remote(), "file:///srv/git/file.git");
}

TEST(ConfigTest, BadGitRepositoriesSayWhatIsWrong) {
  const std::string head = "[[repo]]\nname = \"acme/llm-7b\"\n";
  struct Case {
    std::string body, message;
  } cases[] = {
      {"git = \"ssh://git@example.net/x.git\"\n", ":3: [[repo]] \"acme/llm-7b\" git \"ssh://"},
      {"git = \"relative/path\"\n", "ssh remotes are not supported"},
      {"git = \"/x.git\"\nsources = [\"http://o/m\"]\n", "has both \"git\" and \"sources\""},
      {"sources = [\"http://o/m\"]\nref = \"main\"\n",
       ":4: [[repo]] \"acme/llm-7b\" \"ref\" belongs to a git repository"},
      {"git = \"/x.git\"\nref = \"a b\"\n", "ref \"a b\" is not a valid git ref"},
      {"git = \"/x.git\"\nref = \"\"\n", "\"ref\" is empty"},
      {"git = \"/x.git\"\nauthorization = 5\n",
       "\"authorization\" in [[repo]] \"acme/llm-7b\" must be a string"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(head + c.body);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.body;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.body;
  }
}

TEST(ConfigTest, HubRepositories) {
  auto r = ParseConfig(R"(
[[repo]]
name = "meta-llama/Llama-3.2-1B"
hub  = "https://huggingface.co/"
ref  = "v1.0"
token_file = "/etc/sync-agent/hf.token"
include = ["*.safetensors", "*.json"]
exclude = ["original/*"]

[[repo]]
name = "acme/corpus"
hub  = "http://node-a.example.net:8080"
type = "dataset"
)",
                       kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->repos.size(), 2u);
  const auto& a = dynamic_cast<const HubSpec&>(*r->repos[0].source).settings();
  EXPECT_EQ(a.hub, "https://huggingface.co");
  EXPECT_EQ(a.ref, "v1.0");
  EXPECT_EQ(a.type, "model");  // the default
  EXPECT_THAT(a.include, ::testing::ElementsAre("*.safetensors", "*.json"));
  EXPECT_THAT(a.exclude, ::testing::ElementsAre("original/*"));
  EXPECT_EQ(r->repos[0].token_file, "/etc/sync-agent/hf.token");
  const auto& b = dynamic_cast<const HubSpec&>(*r->repos[1].source).settings();
  EXPECT_EQ(b.ref, "main");
  EXPECT_EQ(b.type, "dataset");
  EXPECT_TRUE(HubPathSelected(a, "model-00001-of-00002.safetensors"));
  EXPECT_TRUE(HubPathSelected(a, "sub/config.json"));  // '*' crosses '/', as the Hub's globs do
  EXPECT_FALSE(HubPathSelected(a, "original/consolidated.json"));
  EXPECT_FALSE(HubPathSelected(a, "pytorch_model.bin"));
}

TEST(ConfigTest, BadHubRepositoriesSayWhatIsWrong) {
  const std::string head = "[[repo]]\nname = \"acme/llm-7b\"\n";
  struct Case {
    std::string body, message;
  } cases[] = {
      {"hub = \"ftp://hub\"\n", ":3: [[repo]] \"acme/llm-7b\" hub \"ftp://hub\" is not valid"},
      {"hub = \"file:///x\"\n", "use https://host or http://host"},
      {"hub = \"https://h\"\ntype = \"space\"\n",
       "type \"space\" must be \"model\" or \"dataset\""},
      {"hub = \"https://h\"\ngit = \"/x.git\"\n", "has both \"hub\" and \"git\""},
      {"sources = [\"http://o/m\"]\ninclude = [\"*.json\"]\n",
       "\"include\" belongs to a hub repository; add \"hub\" or remove it"},
      {"git = \"/x.git\"\ntype = \"model\"\n", "\"type\" belongs to a hub repository"},
      {"hub = \"https://h\"\ninclude = \"*.json\"\n", "must be an array of strings"},
      {"hub = \"https://h\"\nexclude = [\"\"]\n", "exclude has an empty glob"},
      {"hub = \"https://h\"\nref = \"a b\"\n", "is not a branch, tag or commit"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(head + c.body);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.body;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.body;
  }
}

TEST(ConfigTest, TransferSettings) {
  Result<Config> r = ParseConfig(std::string(R"(connections_per_file = 4
connections_total = 12
bandwidth_limit = "100Mbit/s"
ca_file = "/etc/ssl/certs/ca-certificates.crt"
progress_interval = "10s"
retry_attempts = 3
[[bandwidth_schedule]]
from = "22:00"
to = "06:00"
limit = "unlimited"
[[bandwidth_schedule]]
from = "09:00"
to = "17:00"
limit = "1MB/s"
)") + kRepo,
                                 kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->connections_per_file, 4);
  EXPECT_EQ(r->connections_total, 12);
  EXPECT_EQ(r->bandwidth_limit, 12500000u);
  EXPECT_EQ(r->ca_file, "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(r->progress_interval, seconds(10));
  EXPECT_EQ(r->retry_attempts, 3);
  ASSERT_EQ(r->bandwidth_schedule.size(), 2u);
  EXPECT_EQ(r->bandwidth_schedule[0].start_minute, 22 * 60);
  EXPECT_EQ(r->bandwidth_schedule[0].end_minute, 6 * 60);
  EXPECT_EQ(r->bandwidth_schedule[0].bytes_per_second, kUnlimited);
  EXPECT_EQ(r->bandwidth_schedule[1].bytes_per_second, 1000000u);

  Result<Config> d = ParseConfig(kRepo, kPath);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->connections_per_file, 16);
  EXPECT_EQ(d->connections_total, 32);
  EXPECT_EQ(d->bandwidth_limit, kUnlimited);
  EXPECT_EQ(d->retry_attempts, 6);
}

TEST(ConfigTest, ServeLimits) {
  Result<Config> r = ParseConfig(std::string(R"(serve_max_connections = 4000
serve_max_connections_per_address = 0
serve_request_timeout = "20s"
serve_keep_alive_timeout = "1m"
)") + kRepo,
                                 kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->serve_max_connections, 4000);
  EXPECT_EQ(r->serve_max_connections_per_address, 0);
  EXPECT_EQ(r->serve_request_timeout, seconds(20));
  EXPECT_EQ(r->serve_keep_alive_timeout, seconds(60));

  Result<Config> d = ParseConfig(kRepo, kPath);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->serve_max_connections.has_value());
  EXPECT_FALSE(d->serve_max_connections_per_address.has_value());
  EXPECT_FALSE(d->serve_request_timeout.has_value());
  EXPECT_FALSE(d->serve_keep_alive_timeout.has_value());

  struct Case {
    std::string text, message;
  } cases[] = {
      {"serve_max_connections = 0\n",
       ":1: \"serve_max_connections\" must be between 1 and 1000000, not 0"},
      {"serve_max_connections_per_address = -1\n",
       "\"serve_max_connections_per_address\" must be between 0 and 1000000, not -1"},
      {"serve_request_timeout = \"10ms\"\n", "\"serve_request_timeout\" must be at least 1s"},
      {"serve_keep_alive_timeout = 15\n", "\"serve_keep_alive_timeout\""},
  };
  for (const Case& c : cases) {
    Status s = ParseError(c.text + kRepo);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.text;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(ConfigTest, BadTransferSettingsSayWhatIsWrong) {
  struct Case {
    std::string text, message;
  } cases[] = {
      {"connections_per_file = 0\n",
       ":1: \"connections_per_file\" must be between 1 and 64, not 0"},
      {"connections_total = \"8\"\n", "\"connections_total\" must be an integer"},
      {"bandwidth_limit = \"50MB\"\n",
       ":1: \"bandwidth_limit\": bad rate \"50MB\": use a size per second"},
      {"ca_file = \"/no/such/ca.pem\"\n", "\"ca_file\" \"/no/such/ca.pem\" does not exist"},
      {"[[bandwidth_schedule]]\nfrom = \"22:00\"\nlimit = \"1MB/s\"\n",
       "[[bandwidth_schedule]] has no \"to\""},
      {"[[bandwidth_schedule]]\nfrom = \"25:00\"\nto = \"06:00\"\nlimit = \"1MB/s\"\n",
       ":2: [[bandwidth_schedule]] \"from\": bad time of day \"25:00\": use HH:MM"},
      {"[[bandwidth_schedule]]\nfrom = \"06:00\"\nto = \"06:00\"\nlimit = \"1MB/s\"\n",
       "are the same time"},
      {"[[bandwidth_schedule]]\nfrom = \"01:00\"\nto = \"06:00\"\nrate = \"1MB/s\"\n",
       "unknown key \"rate\" in [[bandwidth_schedule]]"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(c.text + kRepo);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << c.text;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.text;
  }
}

TEST(ConfigTest, CredentialsComeFromOneKeyAndAreResolvedAtSyncTime) {
  testing::TempDir tmp;
  std::string file = tmp.Sub("token");
  testing::WriteFile(file, "s3cret\n");
  const std::string head = "[[repo]]\nname = \"acme/llm-7b\"\nsources = [\"https://o/m\"]\n";
  auto parse = [&](const std::string& extra) { return ParseConfig(head + extra, kPath); };
  auto r = parse("token_file = \"" + file + "\"\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*ResolveAuthorization(r->repos[0]), "Bearer s3cret");
  r = parse("token = \"abc\"\n");
  EXPECT_EQ(*ResolveAuthorization(r->repos[0]), "Bearer abc");
  r = parse("authorization = \"Basic dXNlcjpwYXNz\"\n");
  EXPECT_EQ(*ResolveAuthorization(r->repos[0]), "Basic dXNlcjpwYXNz");
  ::setenv("SA_TEST_TOKEN", "from-env", 1);
  r = parse("token_env = \"SA_TEST_TOKEN\"\n");
  EXPECT_EQ(*ResolveAuthorization(r->repos[0]), "Bearer from-env");
  r = parse("token_env = \"SA_TEST_TOKEN_UNSET\"\n");
  auto missing = ResolveAuthorization(r->repos[0]);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("SA_TEST_TOKEN_UNSET, which is not set"));
  r = parse("token_file = \"" + tmp.Sub("none") + "\"\n");
  auto unreadable = ResolveAuthorization(r->repos[0]);
  ASSERT_FALSE(unreadable.ok());
  EXPECT_THAT(unreadable.status().ToString(), HasSubstr("token_file"));

  Status two = ParseError(head + "token = \"a\"\ntoken_env = \"B\"\n");
  EXPECT_THAT(two.message(), HasSubstr(":5: [[repo]] \"acme/llm-7b\" sets more than one of"));
}

TEST(ConfigTest, UnknownKeyInRepoNamesKeyAndLine) {
  Status s = ParseError(R"(interval = "5m"
[[repo]]
name = "acme/llm-7b"
sources = ["http://origin.example.net/models"]
[[repo]]
name = "acme/other"
source = ["http://origin.example.net/models"]
)");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(),
              StartsWith(std::string(kPath) + ":7: unknown key \"source\" in [[repo]]"));
  EXPECT_THAT(s.message(), HasSubstr("did you mean \"sources\"?"));
  EXPECT_THAT(s.message(), HasSubstr("(known keys: name, sources, git, ref, hub, type, include, "
                                     "exclude, authorization, token, token_env, token_file, "
                                     "trusted_keys, accept_rollback_to, include_files, "
                                     "exclude_files, prune_missing)"));
}

TEST(ConfigTest, SubTableInRepoIsAnUnknownKey) {
  Status s = ParseError(std::string(kRepo) + "[repo.mirror]\npath = \"/x\"\n");
  EXPECT_THAT(s.message(), HasSubstr("unknown key \"mirror\" in [[repo]]"));
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":5:"));
}

TEST(ConfigTest, SyntaxErrorReportsLineAndColumn) {
  Status s = ParseError("interval = \"5m\"\nkeep_revisions = [1,\n  2,, ]\n");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":3:5: "));
  EXPECT_THAT(s.message(), HasSubstr("array"));
}

TEST(ConfigTest, UnterminatedStringIsASyntaxError) {
  Status s = ParseError("state_dir = \"/var/lib\n");
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":1:"));
}

TEST(ConfigTest, DuplicateKeyIsASyntaxError) {
  Status s = ParseError("interval = \"5m\"\ninterval = \"6m\"\n");
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":2:"));
  EXPECT_THAT(s.message(), HasSubstr("interval"));
}

// One rejected document, the line the message must point at and text it must contain.
struct BadCase {
  const char* label;
  std::string text;
  int line;
  std::vector<std::string> needles;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.label; }

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, RejectedWithKeyAndLine) {
  const BadCase& c = GetParam();
  Result<Config> r = ParseConfig(c.text, kPath);
  ASSERT_FALSE(r.ok()) << "accepted:\n" << c.text;
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_THAT(r.status().message(),
              StartsWith(std::string(kPath) + ":" + std::to_string(c.line) + ": "));
  for (const std::string& needle : c.needles) {
    EXPECT_THAT(r.status().message(), HasSubstr(needle));
  }
}

const BadCase kBadCases[] = {
    // Wrong types: the key and the expected type are named.
    {"state_dir_integer", "\n\nstate_dir = 5\n", 3, {"\"state_dir\" must be a string", "integer"}},
    {"mirror_root_array", "mirror_root = [\"/srv\"]\n", 1, {"\"mirror_root\" must be a string"}},
    {"interval_integer",
     "interval = 300\n",
     1,
     {"\"interval\" must be a duration string such as \"5m\"", "not an integer"}},
    {"stale_after_float", "stale_after = 1.5\n", 1, {"\"stale_after\" must be", "floating-point"}},
    {"http_timeout_bool", "http_timeout = true\n", 1, {"\"http_timeout\" must be", "boolean"}},
    {"http_low_speed_limit_integer",
     "http_low_speed_limit = 1024\n",
     1,
     {"\"http_low_speed_limit\" must be a string such as \"50MB/s\"", "integer"}},
    {"http_low_speed_limit_garbage",
     "http_low_speed_limit = \"fast\"\n",
     1,
     {"\"http_low_speed_limit\": bad rate \"fast\""}},
    {"http_low_speed_time_zero",
     "http_low_speed_time = \"0s\"\n",
     1,
     {"\"http_low_speed_time\" must be at least 1s"}},
    {"keep_revisions_string",
     "keep_revisions = \"2\"\n",
     1,
     {"\"keep_revisions\" must be an integer", "not a string"}},
    {"keep_revisions_float",
     "keep_revisions = 2.0\n",
     1,
     {"\"keep_revisions\" must be an integer"}},
    {"log_format_integer", "log_format = 1\n", 1, {"\"log_format\" must be a string"}},
    {"repo_string", "repo = \"acme/x\"\n", 1, {"\"repo\" must be an array of tables", "[[repo]]"}},
    {"repo_single_table",
     "[repo]\nname = \"acme/x\"\n",
     1,
     {"\"repo\" must be an array of tables", "not a table"}},
    {"repo_name_integer", "[[repo]]\nname = 7\n", 2, {"\"name\" in [[repo]] must be a string"}},
    {"sources_string",
     "[[repo]]\nname = \"acme/x\"\nsources = \"http://h/m\"\n",
     3,
     {"\"sources\" in [[repo]] \"acme/x\" must be an array of strings", "not a string"}},
    {"sources_element_integer",
     "[[repo]]\nname = \"acme/x\"\nsources = [\n  \"http://h/m\",\n  5,\n]\n",
     5,
     {"\"sources\"", "array of strings", "not an integer"}},
    // Bad values.
    {"interval_garbage", "interval = \"soon\"\n", 1, {"\"interval\"", "bad duration \"soon\""}},
    {"interval_zero", "interval = \"0s\"\n", 1, {"\"interval\" must be at least 1s"}},
    {"interval_sub_second", "interval = \"500ms\"\n", 1, {"\"interval\" must be at least 1s"}},
    {"stale_after_below_interval",
     "interval = \"10m\"\nstale_after = \"5m\"\n",
     2,
     {"\"stale_after\" (5m) must not be shorter than \"interval\" (10m)"}},
    {"stale_after_zero", "stale_after = \"0s\"\n", 1, {"\"stale_after\" must be at least"}},
    {"http_timeout_zero", "http_timeout = \"0s\"\n", 1, {"\"http_timeout\" must be at least 1s"}},
    {"http_timeout_garbage",
     "http_timeout = \"1 minute\"\n",
     1,
     {"\"http_timeout\"", "bad duration"}},
    {"keep_revisions_zero",
     "keep_revisions = 0\n",
     1,
     {"\"keep_revisions\" must be between 1 and 100, not 0"}},
    {"keep_revisions_negative", "keep_revisions = -1\n", 1, {"\"keep_revisions\"", "not -1"}},
    {"keep_revisions_too_many", "keep_revisions = 101\n", 1, {"\"keep_revisions\"", "not 101"}},
    {"log_format_xml",
     "log_format = \"xml\"\n",
     1,
     {"\"log_format\" must be \"plain\" or \"json\", not \"xml\""}},
    // Directories.
    {"state_dir_relative",
     "state_dir = \"var/lib/sync-agent\"\n",
     1,
     {"\"state_dir\" \"var/lib/sync-agent\" must be an absolute path"}},
    {"mirror_root_relative",
     "mirror_root = \"./mirror\"\n",
     1,
     {"\"mirror_root\"", "absolute path"}},
    {"state_dir_empty", "state_dir = \"\"\n", 1, {"\"state_dir\"", "absolute path"}},
    {"mirror_root_dotdot", "mirror_root = \"/srv/../mirror\"\n", 1, {"\"mirror_root\"", "\"..\""}},
    {"same_dirs",
     "state_dir = \"/srv/data\"\nmirror_root = \"/srv/data/\"\n",
     2,
     {"state_dir \"/srv/data\" and mirror_root \"/srv/data\" are the same directory"}},
    {"state_inside_mirror",
     "mirror_root = \"/srv/mirror\"\nstate_dir = \"/srv/mirror/.state\"\n",
     1,
     {"state_dir is inside mirror_root"}},
    {"mirror_inside_state",
     "state_dir = \"/var/lib/sync-agent\"\n\nmirror_root = \"/var/lib/sync-agent/www\"\n",
     3,
     {"mirror_root is inside state_dir"}},
    {"mirror_root_is_root", "mirror_root = \"/\"\n", 1, {"state_dir is inside mirror_root"}},
    {"state_dir_default_inside_mirror",
     "mirror_root = \"/var\"\n",
     1,
     {"state_dir \"/var/lib/sync-agent\"", "state_dir is inside mirror_root"}},
    // Repositories.
    {"repo_missing_name",
     "[[repo]]\nsources = [\"http://h/m\"]\n",
     1,
     {"[[repo]] has no \"name\""}},
    {"repo_bad_name",
     "[[repo]]\nname = \"llm-7b\"\nsources = [\"http://h/m\"]\n",
     2,
     {"[[repo]] name \"llm-7b\" is not of the form org/name"}},
    {"repo_name_dot",
     "[[repo]]\nname = \"acme/.hidden\"\nsources = [\"http://h/m\"]\n",
     2,
     {"\"acme/.hidden\"", "org/name"}},
    {"repo_name_three_parts",
     "[[repo]]\nname = \"a/b/c\"\nsources = [\"http://h/m\"]\n",
     2,
     {"\"a/b/c\"", "org/name"}},
    {"repo_duplicate_name",
     std::string(kRepo) + kRepo,
     7,
     {"duplicate [[repo]] name \"acme/llm-7b\" (first defined on line 3)"}},
    {"repo_missing_sources",
     "\n[[repo]]\nname = \"acme/x\"\n",
     2,
     {"[[repo]] \"acme/x\" has no \"sources\""}},
    {"repo_empty_sources",
     "[[repo]]\nname = \"acme/x\"\nsources = []\n",
     3,
     {"[[repo]] \"acme/x\" \"sources\" is empty"}},
    {"source_duplicate",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"http://h/m\",\n  \"http://h/m/\"]\n",
     4,
     {"lists source \"http://h/m\" more than once"}},
    {"source_duplicate_file",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"file:///data/p\", \"file:///data//p/\"]\n",
     3,
     {"lists source \"file:///data/p\" more than once"}},
    {"source_ftp",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"ftp://h/m\"]\n",
     3,
     {"source \"ftp://h/m\" is not valid: use http://host/path, https://host/path or "
      "file:///absolute/path"}},
    {"source_no_scheme",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"/data/published\"]\n",
     3,
     {"source \"/data/published\" is not valid: use http://"}},
    {"source_file_relative",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"file://data/published\"]\n",
     3,
     {"file:// must be followed by an absolute path"}},
    {"source_file_dotdot",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"file:///data/../etc\"]\n",
     3,
     {"\"file:///data/../etc\"", "\"..\""}},
    {"source_http_no_host",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"http:///models\"]\n",
     3,
     {"no host name after http://"}},
    {"source_query",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"https://h/m?token=1\"]\n",
     3,
     {"query"}},
    {"source_space",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"http://h/my models\"]\n",
     3,
     {"space or control character"}},
    {"source_empty",
     "[[repo]]\nname = \"acme/x\"\nsources = [\"\"]\n",
     3,
     {"source \"\" is not valid: it is empty"}},
};

INSTANTIATE_TEST_SUITE_P(AllBadValues, BadConfigTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           return std::string(info.param.label);
                         });

TEST(LoadConfigTest, ReadsFileAndRecordsPath) {
  testing::TempDir dir;
  std::string path = dir.Sub("sync-agent.toml");
  testing::WriteFile(path, kFullExample);
  Result<Config> r = LoadConfig(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->path, path);
  ASSERT_EQ(r->repos.size(), 1u);
}

TEST(LoadConfigTest, ErrorsNameTheFile) {
  testing::TempDir dir;
  std::string path = dir.Sub("sync-agent.toml");
  testing::WriteFile(path, "interval = \"5m\"\nintreval = \"5m\"\n");
  Result<Config> r = LoadConfig(path);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), StartsWith(path + ":2: unknown key \"intreval\""));
}

TEST(LoadConfigTest, MissingFileIsNotFoundAndSaysWhatToDo) {
  testing::TempDir dir;
  std::string path = dir.Sub("etc/sync-agent.toml");
  Result<Config> r = LoadConfig(path);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(path));
  EXPECT_THAT(r.status().message(), HasSubstr("create it"));
  EXPECT_THAT(r.status().message(), HasSubstr("README.md"));
  EXPECT_THAT(r.status().message(), HasSubstr("Configuration"));
}

TEST(LoadConfigTest, DirectoryIsAnIOError) {
  testing::TempDir dir;
  Result<Config> r = LoadConfig(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(dir.path()));
}

// Two syntactically valid ed25519 public keys (32 bytes of 'a' and of 'b').
constexpr const char* kKeyA = "ed25519:YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=";
constexpr const char* kKeyB = "ed25519:YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=";

TEST(ConfigTest, TrustedKeysApplyToPublishRootsAndARepoMayOverrideThem) {
  Result<Config> r = ParseConfig(std::string("trusted_keys = [\"") + kKeyA + "\"]\n" + R"(
[[repo]]
name = "acme/a"
sources = ["http://o/models"]

[[repo]]
name = "acme/b"
sources = ["http://o/models"]
trusted_keys = [")" + kKeyB + R"("]
accept_rollback_to = "20261201T000000Z-abc"

[[repo]]
name = "acme/c"
sources = ["http://o/models"]
trusted_keys = []

[[repo]]
name = "acme/d"
git = "https://git.example.net/acme/d.git"
)",
                                 kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->repos.size(), 4u);
  EXPECT_EQ(r->trusted_keys, std::vector<std::string>{kKeyA});
  EXPECT_EQ(r->repos[0].trusted_keys, std::vector<std::string>{kKeyA});
  EXPECT_EQ(r->repos[1].trusted_keys, std::vector<std::string>{kKeyB});
  EXPECT_EQ(r->repos[1].accept_rollback_to, "20261201T000000Z-abc");
  EXPECT_TRUE(r->repos[2].trusted_keys.empty());
  EXPECT_TRUE(r->repos[2].trusted_keys_set);
  // A git source carries no signatures: the top-level keys do not apply.
  EXPECT_TRUE(r->repos[3].trusted_keys.empty());
}

TEST(ConfigTest, TrustedKeyMistakesAreNamedWithTheirLine) {
  Status s = ParseError(std::string("trusted_keys = \"") + kKeyA + "\"\n" + kRepo);
  EXPECT_THAT(s.message(), HasSubstr(":1: \"trusted_keys\" must be an array of public keys"));
  s = ParseError(std::string("trusted_keys = [\n  \"") + kKeyA +
                 "\",\n  \"ssh-ed25519 AAAA\"\n]\n" + kRepo);
  EXPECT_THAT(s.message(), HasSubstr(":3: \"trusted_keys\": public key \"ssh-ed25519 AAAA\": does "
                                     "not start with \"ed25519:\""));
  s = ParseError(R"(
[[repo]]
name = "acme/d"
git = "https://git.example.net/acme/d.git"
trusted_keys = [")" +
                 std::string(kKeyA) + "\"]\n");
  EXPECT_THAT(s.message(), HasSubstr(":5: [[repo]] \"acme/d\" \"trusted_keys\": a git source "
                                     "carries no revision signatures"));
  s = ParseError(std::string(kRepo) + "accept_rollback_to = \"../x\"\n");
  EXPECT_THAT(s.message(), HasSubstr("\"accept_rollback_to\" is not a revision id"));
}

TEST(ConfigTest, ManifestLimitsAreConfigurable) {
  Result<Config> r = ParseConfig(
      std::string("manifest_max_files = 1000\nmanifest_max_bytes = \"8MiB\"\n") + kRepo, kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->manifest_limits.max_files, 1000u);
  EXPECT_EQ(r->manifest_limits.max_bytes, 8u << 20);
  r = ParseConfig(kRepo, kPath);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->manifest_limits.max_files, 250000u);
  EXPECT_EQ(r->manifest_limits.max_bytes, 128u << 20);
  Status s = ParseError(std::string("manifest_max_bytes = \"1KiB\"\n") + kRepo);
  EXPECT_THAT(s.message(), HasSubstr(":1: \"manifest_max_bytes\" must be a size of at least 4KiB"));
  s = ParseError(std::string("manifest_max_files = 0\n") + kRepo);
  EXPECT_THAT(s.message(), HasSubstr("\"manifest_max_files\" must be between 1 and 10000000"));
}

TEST(ConfigTest, SeveralMistakesAreReportedTogether) {
  // Issue 11 finding 11: only the first mistake used to be reported.
  Status s = ParseError(R"(interval = "soon"

[[repo]]
name = "acme/a"
sources = ["ftp://o/models"]

[[repo]]
name = "acme/ok"
sources = ["http://o/models"]

[[repo]]
name = "bad name"
sources = ["http://o/models"]
)");
  EXPECT_THAT(s.message(), StartsWith(std::string(kPath) + ":1: "));
  EXPECT_THAT(s.message(), HasSubstr("\n" + std::string(kPath) + ":5: "));
  EXPECT_THAT(s.message(),
              HasSubstr("\n" + std::string(kPath) + ":12: [[repo]] name \"bad name\""));
  EXPECT_THAT(s.message(), HasSubstr("(3 mistakes in " + std::string(kPath) + ")"));
}

TEST(LoadConfigTest, PathThroughAFileIsAnIOError) {
  // ENOTDIR: unlike a permission test, this fails the same way for root.
  testing::TempDir dir;
  testing::WriteFile(dir.Sub("etc"), "not a directory");
  std::string path = dir.Sub("etc/sync-agent.toml");
  Result<Config> r = LoadConfig(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("cannot read config file " + path));
}

TEST(LoadConfigTest, UnreadableFileIsAnIOError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files regardless of their mode";
  testing::TempDir dir;
  std::string path = dir.Sub("sync-agent.toml");
  testing::WriteFile(path, kFullExample, 0000);
  Result<Config> r = LoadConfig(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("Permission denied"));
}

TEST(LoadConfigTest, OversizedFileIsRejected) {
  testing::TempDir dir;
  std::string path = dir.Sub("sync-agent.toml");
  testing::WriteFile(path, std::string(2 << 20, '#'));
  Result<Config> r = LoadConfig(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("larger than"));
}

// ---------------------------------------------------------------- organisation globs

constexpr const char* kTop = "state_dir = \"/var/lib/sa\"\nmirror_root = \"/srv/m\"\n";

TEST(ConfigTest, OrgGlobWithHubAndPublishRoots) {
  Result<Config> r = ParseConfig(std::string(kTop) + R"(prune_missing = true
org_max_repos = 500
[[repo]]
name = "acme/*"
hub = "https://huggingface.co"
include = ["llm-*", "acme/tok*"]
exclude = ["*-old"]
include_files = ["*.json"]
exclude_files = ["*.bin"]
[[repo]]
name = "acme/*"
hub = "https://huggingface.co"
type = "dataset"
prune_missing = false
[[repo]]
name = "beta/*"
sources = ["http://origin.example.net/models", "file:///data/pub"]
[[repo]]
name = "acme/llm-7b"
sources = ["http://origin.example.net/models"]
)",
                                 kPath);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->prune_missing);
  EXPECT_EQ(r->org_max_repos, 500);
  ASSERT_EQ(r->repos.size(), 1u);
  ASSERT_EQ(r->orgs.size(), 3u);
  const OrgFollowConfig& models = r->orgs[0];
  EXPECT_EQ(models.org, "acme");
  EXPECT_EQ(models.glob(), "acme/*");
  EXPECT_TRUE(models.prune_missing);  // the top level's
  EXPECT_EQ(models.include, (std::vector<std::string>{"llm-*", "acme/tok*"}));
  EXPECT_EQ(models.exclude, (std::vector<std::string>{"*-old"}));
  const auto& hub = dynamic_cast<const HubSpec&>(*models.repo.source).settings();
  EXPECT_EQ(hub.include, (std::vector<std::string>{"*.json"}));  // include_files
  EXPECT_EQ(hub.exclude, (std::vector<std::string>{"*.bin"}));
  EXPECT_EQ(r->orgs[1].glob(), "datasets/acme/*");
  EXPECT_FALSE(r->orgs[1].prune_missing);
  EXPECT_EQ(r->orgs[2].repo.source->urls().size(), 2u);

  // Names: without '/' the NAME, with '/' ORG/NAME.
  EXPECT_TRUE(OrgRepoSelected(models, "acme/llm-7b"));
  EXPECT_TRUE(OrgRepoSelected(models, "acme/tokenizer"));
  EXPECT_FALSE(OrgRepoSelected(models, "acme/llm-7b-old"));   // excluded
  EXPECT_FALSE(OrgRepoSelected(models, "acme/other"));        // not included
  EXPECT_TRUE(OrgRepoSelected(r->orgs[2], "beta/anything"));  // no include: all
}

TEST(ConfigTest, OrgGlobMistakesSayWhatToWrite) {
  auto org = [](const std::string& body) { return std::string(kTop) + "[[repo]]\n" + body; };
  Status s = ParseError(org("name = \"acme/*\"\ngit = \"https://example.net/x.git\"\n"));
  EXPECT_THAT(s.message(), HasSubstr(":4: [[repo]] \"acme/*\": a git source cannot list an "
                                     "organisation's repositories"));
  s = ParseError(org("name = \"*/*\"\nhub = \"https://huggingface.co\"\n"));
  EXPECT_THAT(s.message(), HasSubstr("the organisation cannot be a glob"));
  s = ParseError(org("name = \"*\"\nhub = \"https://huggingface.co\"\n"));
  EXPECT_THAT(s.message(), HasSubstr("the organisation cannot be a glob"));
  s = ParseError(org("name = \"acme/llm*\"\nhub = \"https://huggingface.co\"\n"));
  EXPECT_THAT(s.message(), HasSubstr("only \"acme/*\" is a glob name"));
  EXPECT_THAT(s.message(), HasSubstr("include = [\"llm*\"]"));
  s =
      ParseError(org("name = \"acme/llm-7b\"\nhub = \"https://huggingface.co\"\n"
                     "include_files = [\"*.json\"]\n"));
  EXPECT_THAT(s.message(),
              HasSubstr(":6: [[repo]] \"acme/llm-7b\" \"include_files\" is only for an "
                        "organisation table"));
  s = ParseError(org("name = \"acme/llm-7b\"\nsources = [\"file:///p\"]\nprune_missing = true\n"));
  EXPECT_THAT(s.message(), HasSubstr("\"prune_missing\" is only for an organisation table"));
  s = ParseError(org("name = \"acme/*\"\nsources = [\"file:///p\"]\ninclude_files = [\"a\"]\n"));
  EXPECT_THAT(s.message(), HasSubstr("\"include_files\" belongs to a hub repository"));
  s =
      ParseError(org("name = \"acme/*\"\nhub = \"https://huggingface.co\"\n"
                     "include = [\"other/x\"]\n"));
  EXPECT_THAT(s.message(), HasSubstr("include glob \"other/x\" can never match"));
  s =
      ParseError(org("name = \"acme/*\"\nhub = \"https://huggingface.co\"\n"
                     "prune_missing = \"yes\"\n"));
  EXPECT_THAT(s.message(), HasSubstr("\"prune_missing\" in [[repo]] \"acme/*\" must be true or "
                                     "false, not a string"));
  s =
      ParseError(org("name = \"acme/*\"\nhub = \"https://h.example\"\n[[repo]]\n"
                     "name = \"acme/*\"\nsources = [\"file:///p\"]\n"));
  EXPECT_THAT(s.message(),
              HasSubstr("duplicate [[repo]] name \"acme/*\" (first defined on line 4)"));
  s = ParseError(std::string(kTop) + "org_max_repos = 0\n");
  EXPECT_THAT(s.message(), HasSubstr("\"org_max_repos\" must be between 1 and"));
}

}  // namespace
}  // namespace sync_agent
