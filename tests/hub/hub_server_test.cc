// HubServer, the test stand-in for huggingface.co and its CDN, checked over
// real loopback sockets: what it answers must be what the Hub answers, or the
// tests built on it prove nothing.
#include "tests/support/hub_server.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <set>

#include "common/base/time_util.h"
#include "common/hash/content_hasher.h"
#include "common/http/http_client.h"
#include "common/http/http_text.h"
#include "tests/support/test_util.h"

namespace sync_agent {
namespace {

using testing::HubServer;
using testing::RepoType;

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// One request on a fresh connection, the target sent exactly as given and
// redirects not followed.
RawResponse Exchange(const std::string& method, const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  const std::string rest = url.substr(std::string("http://").size());
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const size_t colon = authority.rfind(':');
  Poco::Net::HTTPClientSession session(
      authority.substr(0, colon),
      static_cast<Poco::UInt16>(std::stoi(authority.substr(colon + 1))));
  Poco::Net::HTTPRequest request(method, slash == std::string::npos ? "/" : rest.substr(slash),
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& [name, value] : headers) request.set(name, value);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  RawResponse out;
  out.status = response.getStatus();
  for (const auto& [name, value] : response) out.headers[AsciiLower(name)] = value;
  Poco::StreamCopier::copyToString(in, out.body);
  return out;
}

RawResponse Get(const std::string& url, const std::string& token = "") {
  if (token.empty()) return Exchange("GET", url);
  return Exchange("GET", url, {{"Authorization", "Bearer " + token}});
}

HttpRequest GetOf(const std::string& url) {
  HttpRequest request;
  request.url = url;
  return request;
}

Poco::JSON::Object::Ptr JsonObject(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

Poco::JSON::Array::Ptr JsonArray(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Array::Ptr>();
}

// The URL inside `Link: <url>; rel="next"`, or "" when there is none.
std::string NextLink(const RawResponse& response) {
  const std::string link = response.header("link");
  const size_t open = link.find('<');
  const size_t close = link.find('>');
  if (open == std::string::npos || close == std::string::npos ||
      link.find("rel=\"next\"", close) == std::string::npos) {
    return "";
  }
  return link.substr(open + 1, close - open - 1);
}

// Output without its trailing newline.
std::string Chomp(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string GitHashObject(const std::string& dir, const std::string& content) {
  const std::string path = dir + "/blob";
  testing::WriteFile(path, content);
  testing::ProcessResult result = testing::RunProcess({"/usr/bin/git", "hash-object", path});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return Chomp(result.out);
}

class HubServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!HubServer::CanListenOn("127.0.0.2", &why)) {
      GTEST_SKIP() << "cannot listen on 127.0.0.2, which the CDN listener needs: " << why;
    }
    hub_ = std::make_unique<HubServer>();
  }

  std::string Api(const std::string& rest) const { return hub_->url() + "/api/" + rest; }

  std::unique_ptr<HubServer> hub_;
};

TEST_F(HubServerTest, RevisionInfoByBranchTagShaAndEncodedRef) {
  const std::string first =
      hub_->Commit("acme/llm", RepoType::kModel, "main",
                   {{"config.json", {"{}", false}}, {"weights.bin", {"w1", true}}}, "first");
  const std::string second = hub_->Commit("acme/llm", RepoType::kModel, "main",
                                          {{"config.json", {"{\"v\":2}", false}}}, "second");
  hub_->Tag("acme/llm", RepoType::kModel, "v1", first);
  const std::string pr = hub_->Commit("acme/llm", RepoType::kModel, "refs/pr/1",
                                      {{"pr.txt", {"pr", false}}}, "a pull request");
  EXPECT_EQ(hub_->Head("acme/llm", RepoType::kModel, "main"), second);
  EXPECT_EQ(first.size(), 40u);
  EXPECT_TRUE(IsLowerHex(first, 40));

  struct Case {
    std::string path;
    std::string sha;
    std::vector<std::string> siblings;
  };
  for (const Case& c : std::vector<Case>{
           {"models/acme/llm", second, {"config.json"}},
           {"models/acme/llm/revision/main", second, {"config.json"}},
           {"models/acme/llm/revision/HEAD", second, {"config.json"}},
           {"models/acme/llm/revision/v1", first, {"config.json", "weights.bin"}},
           {"models/acme/llm/revision/" + first, first, {"config.json", "weights.bin"}},
           {"models/acme/llm/revision/refs%2Fpr%2F1", pr, {"pr.txt"}},
       }) {
    SCOPED_TRACE(c.path);
    RawResponse r = Get(Api(c.path));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto info = JsonObject(r.body);
    EXPECT_EQ(info->getValue<std::string>("id"), "acme/llm");
    EXPECT_EQ(info->getValue<std::string>("_id").size(), 24u);
    EXPECT_EQ(info->getValue<std::string>("sha"), c.sha);
    EXPECT_FALSE(info->getValue<bool>("private"));
    EXPECT_FALSE(info->getValue<bool>("gated"));
    SystemTime t;
    EXPECT_TRUE(ParseIsoTime(info->getValue<std::string>("lastModified"), &t));
    auto siblings = info->getArray("siblings");
    std::vector<std::string> names;
    for (size_t i = 0; i < siblings->size(); ++i) {
      names.push_back(
          siblings->getObject(static_cast<unsigned>(i))->getValue<std::string>("rfilename"));
    }
    EXPECT_EQ(names, c.siblings);
  }
  // huggingface.js sends a tree's revision raw.
  auto pr_tree = JsonArray(Get(Api("models/acme/llm/tree/refs/pr/1?recursive=true")).body);
  ASSERT_EQ(pr_tree->size(), 1u);
  EXPECT_EQ(pr_tree->getObject(0)->getValue<std::string>("path"), "pr.txt");
  // A dataset of the same name is another repository.
  RawResponse dataset = Get(Api("datasets/acme/llm/revision/main"), "hf_any");
  EXPECT_EQ(dataset.status, 404);
  EXPECT_EQ(dataset.header("x-error-code"), "RepoNotFound");
}

TEST_F(HubServerTest, SiblingsWithBlobsAndTruncated) {
  const std::string weights = testing::RandomBytes(1000, 7);
  hub_->Commit("acme/data", RepoType::kDataset, "main",
               {{"a.txt", {"alpha", false}}, {"b.bin", {weights, true}}, {"c.txt", {"c", false}}},
               "files");
  RawResponse r = Get(Api("datasets/acme/data/revision/main?blobs=true"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto siblings = JsonObject(r.body)->getArray("siblings");
  ASSERT_EQ(siblings->size(), 3u);
  auto a = siblings->getObject(0);
  EXPECT_EQ(a->getValue<uint64_t>("size"), 5u);
  EXPECT_EQ(a->getValue<std::string>("blobId"), testing::GitBlobId("alpha"));
  EXPECT_FALSE(a->has("lfs"));
  auto lfs = siblings->getObject(1)->getObject("lfs");
  ASSERT_TRUE(lfs);
  EXPECT_EQ(lfs->getValue<std::string>("sha256"), Sha256Hex(weights));
  EXPECT_EQ(lfs->getValue<uint64_t>("size"), 1000u);
  EXPECT_EQ(lfs->getValue<uint64_t>("pointerSize"), testing::LfsPointerText(weights).size());

  hub_->TruncateSiblings(1);
  EXPECT_EQ(
      JsonObject(Get(Api("datasets/acme/data/revision/main")).body)->getArray("siblings")->size(),
      1u);
  hub_->TruncateSiblings(0);
  EXPECT_EQ(JsonObject(Get(Api("datasets/acme/data")).body)->getArray("siblings")->size(), 0u);
  hub_->TruncateSiblings(std::nullopt);
  EXPECT_EQ(JsonObject(Get(Api("datasets/acme/data")).body)->getArray("siblings")->size(), 3u);
}

TEST_F(HubServerTest, TreePagesFollowLinkAndOidsAreGits) {
  std::map<std::string, HubServer::File> files;
  for (int i = 0; i < 9; ++i) {
    files["top" + std::to_string(i) + ".txt"] = {"top " + std::to_string(i), false};
    files["sub/dir/n" + std::to_string(i) + ".txt"] = {"deep " + std::to_string(i), false};
  }
  const std::string weights = testing::RandomBytes(5000, 3);
  files["sub/model.safetensors"] = {weights, true};
  files["sub.txt"] = {"a file whose name sorts between sub and sub/", false};
  const std::string sha = hub_->Commit("acme/tree", RepoType::kModel, "main", files, "many files");
  hub_->SetTreePageSize(4);

  std::map<std::string, Poco::JSON::Object::Ptr> seen;
  std::string url = Api("models/acme/tree/tree/main?recursive=true&expand=false");
  int pages = 0;
  while (!url.empty()) {
    SCOPED_TRACE(url);
    ASSERT_LT(++pages, 20) << "the Link chain does not end";
    RawResponse r = Get(url);
    ASSERT_EQ(r.status, 200) << r.body;
    auto page = JsonArray(r.body);
    EXPECT_LE(page->size(), 4u);
    for (size_t i = 0; i < page->size(); ++i) {
      auto entry = page->getObject(static_cast<unsigned>(i));
      EXPECT_TRUE(seen.emplace(entry->getValue<std::string>("path"), entry).second)
          << "listed twice: " << entry->getValue<std::string>("path");
    }
    url = NextLink(r);
    if (!url.empty()) {
      EXPECT_EQ(url.rfind(hub_->url() + "/api/models/acme/tree/tree/main?", 0), 0u);
      EXPECT_NE(url.find("recursive=true"), std::string::npos);
      EXPECT_NE(r.header("link").find(">; rel=\"next\""), std::string::npos);
    }
  }
  EXPECT_EQ(pages, 6);  // 20 files and 3 directories, 4 a page
  std::set<std::string> file_paths, dir_paths;
  for (const auto& [path, entry] : seen) {
    (entry->getValue<std::string>("type") == "file" ? file_paths : dir_paths).insert(path);
  }
  std::set<std::string> expected_files;
  for (const auto& [path, file] : files) expected_files.insert(path);
  EXPECT_EQ(file_paths, expected_files);
  EXPECT_EQ(dir_paths, (std::set<std::string>{"sub", "sub/dir"}));

  // Oids are what git computes: for a regular file its blob, for an LFS file
  // its pointer's blob, for a directory its tree.
  testing::TempDir tmp;
  auto regular = seen.at("sub/dir/n3.txt");
  EXPECT_EQ(regular->getValue<std::string>("oid"), GitHashObject(tmp.path(), "deep 3"));
  EXPECT_EQ(regular->getValue<uint64_t>("size"), 6u);
  EXPECT_FALSE(regular->has("lfs"));
  auto lfs_entry = seen.at("sub/model.safetensors");
  const std::string pointer = testing::LfsPointerText(weights);
  EXPECT_EQ(pointer, "version https://git-lfs.github.com/spec/v1\noid sha256:" +
                         Sha256Hex(weights) + "\nsize 5000\n");
  EXPECT_EQ(lfs_entry->getValue<std::string>("oid"), GitHashObject(tmp.path(), pointer));
  EXPECT_EQ(lfs_entry->getValue<uint64_t>("size"), 5000u);
  auto lfs = lfs_entry->getObject("lfs");
  ASSERT_TRUE(lfs);
  EXPECT_EQ(lfs->getValue<std::string>("oid"), Sha256Hex(weights));
  EXPECT_EQ(lfs->getValue<uint64_t>("size"), 5000u);
  EXPECT_EQ(lfs->getValue<uint64_t>("pointerSize"), pointer.size());

  const std::string work = tmp.Sub("work");
  for (const auto& [path, file] : files) {
    testing::MakeDirs(work + "/" +
                      path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/')));
    testing::WriteFile(work + "/" + path,
                       file.lfs ? testing::LfsPointerText(file.content) : file.content);
  }
  auto git = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/git", "-C", work});
    testing::ProcessResult result = testing::RunProcess(args);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return Chomp(result.out);
  };
  git({"init", "-q"});
  git({"add", "-A"});
  const std::string root_tree = git({"write-tree"});
  EXPECT_EQ(seen.at("sub/dir")->getValue<std::string>("oid"),
            git({"rev-parse", root_tree + ":sub/dir"}));
  EXPECT_EQ(seen.at("sub")->getValue<std::string>("oid"), git({"rev-parse", root_tree + ":sub"}));

  // Not recursive: the children only. A path narrows the listing (Python
  // encodes its slashes); a path that is no directory is not found.
  auto top = JsonArray(Get(Api("models/acme/tree/tree/" + sha + "?recursive=false")).body);
  EXPECT_EQ(top->size(), 4u);  // a page of the 9 top files, sub, sub.txt
  hub_->SetTreePageSize(1000);
  top = JsonArray(Get(Api("models/acme/tree/tree/main")).body);
  EXPECT_EQ(top->size(), 11u);
  auto dir = JsonArray(Get(Api("models/acme/tree/tree/main/sub%2Fdir?recursive=True")).body);
  EXPECT_EQ(dir->size(), 9u);
  EXPECT_EQ(dir->getObject(0)->getValue<std::string>("path"), "sub/dir/n0.txt");
  RawResponse not_dir = Get(Api("models/acme/tree/tree/main/top1.txt"));
  EXPECT_EQ(not_dir.status, 404);
  EXPECT_EQ(not_dir.header("x-error-code"), "EntryNotFound");
}

TEST_F(HubServerTest, TreeExpandGivesLastCommitInPagesOfFifty) {
  std::map<std::string, HubServer::File> files;
  for (int i = 0; i < 60; ++i) files["f" + std::to_string(100 + i)] = {"x", false};
  const std::string first =
      hub_->Commit("acme/exp", RepoType::kModel, "main", files, "first\n\nbody");
  files["f100"] = {"changed", false};
  const std::string second = hub_->Commit("acme/exp", RepoType::kModel, "main", files, "second");
  RawResponse r = Get(Api("models/acme/exp/tree/main?expand=true"));
  ASSERT_EQ(r.status, 200);
  auto page = JsonArray(r.body);
  ASSERT_EQ(page->size(), 50u);
  EXPECT_FALSE(NextLink(r).empty());
  auto changed = page->getObject(0)->getObject("lastCommit");
  EXPECT_EQ(changed->getValue<std::string>("id"), second);
  EXPECT_EQ(changed->getValue<std::string>("title"), "second");
  auto unchanged = page->getObject(1)->getObject("lastCommit");
  EXPECT_EQ(unchanged->getValue<std::string>("id"), first);
  EXPECT_EQ(unchanged->getValue<std::string>("title"), "first");
}

TEST_F(HubServerTest, ResolveOfARegularFileAnswersItself) {
  const std::string sha = hub_->Commit("acme/llm", RepoType::kModel, "main",
                                       {{"cfg/config.json", {"{\"hidden\": 64}", false}}}, "c");
  const std::string url = hub_->url() + "/acme/llm/resolve/main/cfg/config.json";
  RawResponse head = Exchange("HEAD", url);
  ASSERT_EQ(head.status, 200);
  EXPECT_EQ(head.header("etag"), "\"" + testing::GitBlobId("{\"hidden\": 64}") + "\"");
  EXPECT_EQ(head.header("x-repo-commit"), sha);
  EXPECT_EQ(head.header("content-length"), "14");
  EXPECT_EQ(head.header("accept-ranges"), "bytes");
  EXPECT_EQ(head.body, "");
  RawResponse get = Get(url);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "{\"hidden\": 64}");
  RawResponse part = Exchange("GET", url, {{"Range", "bytes=2-7"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.header("content-range"), "bytes 2-7/14");
  EXPECT_EQ(part.body, "hidden");
  // The revision may come encoded, and so may the path.
  EXPECT_EQ(Get(hub_->url() + "/acme/llm/resolve/" + sha + "/cfg%2Fconfig.json").status, 200);
}

TEST_F(HubServerTest, RawOfAnLfsFileIsItsPointerAndEmptyFilesIgnoreRanges) {
  const std::string weights = testing::RandomBytes(2000, 4);
  hub_->Commit("acme/llm", RepoType::kModel, "main",
               {{"w.bin", {weights, true}}, {"empty.txt", {"", false}}}, "c");
  RawResponse raw = Get(hub_->url() + "/acme/llm/raw/main/w.bin");
  ASSERT_EQ(raw.status, 200);
  EXPECT_EQ(raw.body, testing::LfsPointerText(weights));
  EXPECT_EQ(raw.header("etag"), "\"" + testing::GitBlobId(raw.body) + "\"");
  for (std::string range : {"bytes=0-0", "bytes=0-", "bytes=-1"}) {
    SCOPED_TRACE(range);
    RawResponse empty =
        Exchange("GET", hub_->url() + "/acme/llm/resolve/main/empty.txt", {{"Range", range}});
    EXPECT_EQ(empty.status, 200);
    EXPECT_EQ(empty.body, "");
    EXPECT_EQ(empty.header("etag"), "\"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\"");
  }
}

TEST_F(HubServerTest, RegularFilesViaTheResolveCacheAsHuggingFaceCoDoesToday) {
  HubServer::Options options;
  options.regular_files_via_resolve_cache = true;
  HubServer hub(options);
  const std::string sha = hub.Commit(
      "acme/data", RepoType::kDataset, "main",
      {{"dir/config.json", {"{\"a\": 1}", false}}, {"w.bin", {testing::RandomBytes(100, 1), true}}},
      "c");
  hub.SetPrivate("acme/data", RepoType::kDataset, "hf_owner");
  RawResponse redirect =
      Get(hub.url() + "/datasets/acme/data/resolve/main/dir/config.json", "hf_owner");
  ASSERT_EQ(redirect.status, 307);
  const std::string location = redirect.header("location");
  EXPECT_EQ(location.rfind("/api/resolve-cache/datasets/acme/data/" + sha + "/dir/config.json?", 0),
            0u)
      << location;
  EXPECT_EQ(redirect.header("x-repo-commit"), sha);
  // The cache URL is the Hub's too: the token still matters there.
  EXPECT_EQ(Get(hub.url() + location).status, 401);
  RawResponse file = Get(hub.url() + location, "hf_owner");
  ASSERT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "{\"a\": 1}");
  EXPECT_EQ(file.header("etag"), "\"" + testing::GitBlobId("{\"a\": 1}") + "\"");
  EXPECT_EQ(file.header("x-repo-commit"), sha);
  // LFS files still go to the CDN.
  EXPECT_EQ(Get(hub.url() + "/datasets/acme/data/resolve/main/w.bin", "hf_owner").status, 302);
  // The agent's client follows the relative redirect with its token.
  HttpClientOptions client_options;
  client_options.authorization = "Bearer hf_owner";
  HttpClient client(client_options);
  auto fetched =
      client.Fetch(GetOf(hub.url() + "/datasets/acme/data/resolve/main/dir/config.json"), 1000);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->first.status, 200);
  EXPECT_EQ(fetched->second, "{\"a\": 1}");
}

TEST_F(HubServerTest, ExpiredCdnUrlIsRefused) {
  HubServer::Options options;
  options.cdn_url_lifetime = std::chrono::seconds(-10);  // signed URLs born expired
  HubServer hub(options);
  hub.Commit("acme/llm", RepoType::kModel, "main", {{"w.bin", {"weights", true}}}, "c");
  RawResponse redirect = Get(hub.url() + "/acme/llm/resolve/main/w.bin");
  ASSERT_EQ(redirect.status, 302);
  RawResponse expired = Get(redirect.header("location"));
  EXPECT_EQ(expired.status, 403);
  EXPECT_NE(expired.body.find("AccessDenied"), std::string::npos);
}

TEST(HubServerListenTest, CanListenOnSaysWhyNot) {
  std::string why;
  EXPECT_TRUE(HubServer::CanListenOn("127.0.0.1", &why)) << why;
  // 192.0.2.0/24 is TEST-NET-1: never a local address.
  EXPECT_FALSE(HubServer::CanListenOn("192.0.2.1", &why));
  EXPECT_FALSE(why.empty());
}

TEST_F(HubServerTest, ResolveOfAnLfsFileRedirectsToTheCdn) {
  const std::string weights = testing::RandomBytes(100000, 11);
  const std::string sha = hub_->Commit("acme/data", RepoType::kDataset, "main",
                                       {{"shards/part-0.parquet", {weights, true}}}, "data");
  const std::string resolve =
      hub_->url() + "/datasets/acme/data/resolve/main/shards/part-0.parquet";
  RawResponse head = Exchange("HEAD", resolve, {{"Authorization", "Bearer hf_reader"}});
  ASSERT_EQ(head.status, 302);
  const std::string location = head.header("location");
  EXPECT_EQ(location.rfind(hub_->cdn_url() + "/repos/", 0), 0u) << location;
  EXPECT_EQ(hub_->cdn_url().rfind("http://127.0.0.2:", 0), 0u);
  EXPECT_EQ(head.header("x-repo-commit"), sha);
  EXPECT_EQ(head.header("x-linked-etag"), "\"" + Sha256Hex(weights) + "\"");
  EXPECT_EQ(head.header("x-linked-size"), "100000");
  EXPECT_FALSE(head.header("etag").empty());
  EXPECT_EQ(head.header("x-xet-hash").size(), 64u);
  EXPECT_NE(head.header("link").find("rel=\"xet-auth\""), std::string::npos);

  RawResponse whole = Get(location);
  ASSERT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == weights);
  EXPECT_EQ(whole.header("accept-ranges"), "bytes");
  EXPECT_EQ(whole.header("x-repo-commit"), "");  // the CDN knows nothing of commits
  EXPECT_EQ(Exchange("HEAD", location).header("content-length"), "100000");
  struct Case {
    std::string range;
    int status;
    std::string content_range;
    std::string body;
  };
  for (const Case& c : std::vector<Case>{
           {"bytes=10-19", 206, "bytes 10-19/100000", weights.substr(10, 10)},
           {"bytes=99990-", 206, "bytes 99990-99999/100000", weights.substr(99990)},
           {"bytes=99995-200000", 206, "bytes 99995-99999/100000", weights.substr(99995)},
           {"bytes=-4", 206, "bytes 99996-99999/100000", weights.substr(99996)},
           {"bytes=100000-", 416, "bytes */100000", ""},
       }) {
    SCOPED_TRACE(c.range);
    RawResponse r = Exchange("GET", location, {{"Range", c.range}});
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.header("content-range"), c.content_range);
    if (c.status == 206) {
      EXPECT_TRUE(r.body == c.body);
    }
  }
  // The signature is checked; authorization is not needed.
  std::string forged = location;
  forged[forged.find("Signature=") + 10] ^= 1;
  EXPECT_EQ(Get(forged).status, 403);

  // Through the agent's client: the token goes to the hub, never to the CDN.
  hub_->ClearRequests();
  HttpClientOptions options;
  options.authorization = "Bearer hf_reader";
  HttpClient client(options);
  auto fetched = client.Fetch(GetOf(resolve), 1 << 20);
  ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
  EXPECT_EQ(fetched->first.status, 200);
  EXPECT_TRUE(fetched->second == weights);
  auto log = hub_->requests();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].listener, "hub");
  EXPECT_EQ(log[0].authorization, "Bearer hf_reader");
  EXPECT_EQ(log[0].status, 302);
  EXPECT_EQ(log[1].listener, "cdn");
  EXPECT_EQ(log[1].authorization, "");
  EXPECT_EQ(log[1].status, 200);
  EXPECT_EQ(log[1].target, location.substr(hub_->cdn_url().size()));
}

TEST_F(HubServerTest, ErrorsCarryTheHubsCodes) {
  const std::string sha =
      hub_->Commit("acme/llm", RepoType::kModel, "main", {{"a.txt", {"a", false}}}, "c");
  struct Case {
    std::string url;
    std::string token;
    int status;
    std::string code;
  };
  const std::string h = hub_->url();
  for (const Case& c : std::vector<Case>{
           // An unknown repository: 401 to an anonymous caller, 404 to one with a token.
           {h + "/api/models/acme/nope/revision/main", "", 401, "RepoNotFound"},
           {h + "/api/models/acme/nope/revision/main", "hf_x", 404, "RepoNotFound"},
           {h + "/api/models/acme/nope/tree/main", "", 401, "RepoNotFound"},
           {h + "/acme/nope/resolve/main/a.txt", "", 401, "RepoNotFound"},
           {h + "/acme/nope/resolve/main/a.txt", "hf_x", 404, "RepoNotFound"},
           {h + "/datasets/acme/llm/resolve/main/a.txt", "hf_x", 404, "RepoNotFound"},
           {h + "/api/models/acme/llm/revision/nope", "", 404, "RevisionNotFound"},
           {h + "/api/models/acme/llm/tree/nope", "", 404, "RevisionNotFound"},
           {h + "/acme/llm/resolve/nope/a.txt", "", 404, "RevisionNotFound"},
           {h + "/acme/llm/resolve/main/b.txt", "", 404, "EntryNotFound"},
           {h + "/api/models/acme/llm/tree/main/nope", "", 404, "EntryNotFound"},
       }) {
    SCOPED_TRACE(c.url + " token '" + c.token + "'");
    RawResponse r = Get(c.url, c.token);
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.header("x-error-code"), c.code);
    EXPECT_FALSE(r.header("x-error-message").empty());
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(JsonObject(r.body)->getValue<std::string>("error"), r.header("x-error-message"));
  }
  // A missing entry names the commit it is missing from, as the Hub's does.
  EXPECT_EQ(Get(h + "/acme/llm/resolve/main/b.txt").header("x-repo-commit"), sha);
}

TEST_F(HubServerTest, PrivateRepositoryExistsOnlyForItsToken) {
  hub_->Commit("acme/secret", RepoType::kModel, "main", {{"a.txt", {"a", false}}}, "c");
  hub_->SetPrivate("acme/secret", RepoType::kModel, "hf_owner");
  for (std::string path :
       {"/api/models/acme/secret/revision/main", "/api/models/acme/secret/tree/main",
        "/acme/secret/resolve/main/a.txt"}) {
    SCOPED_TRACE(path);
    RawResponse anonymous = Get(hub_->url() + path);
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_EQ(anonymous.header("x-error-code"), "RepoNotFound");
    RawResponse stranger = Get(hub_->url() + path, "hf_stranger");
    EXPECT_EQ(stranger.status, 404);
    EXPECT_EQ(stranger.header("x-error-code"), "RepoNotFound");
    EXPECT_EQ(Get(hub_->url() + path, "hf_owner").status, 200);
  }
  EXPECT_TRUE(JsonObject(Get(hub_->url() + "/api/models/acme/secret", "hf_owner").body)
                  ->getValue<bool>("private"));
}

TEST_F(HubServerTest, GatedRepositoryShowsItsFilesButKeepsTheirContent) {
  const std::string weights = testing::RandomBytes(3000, 5);
  hub_->Commit("acme/gated", RepoType::kModel, "main",
               {{"config.json", {"{}", false}}, {"w.bin", {weights, true}}}, "c");
  hub_->SetGated("acme/gated", RepoType::kModel, "hf_granted", "auto");
  RawResponse info = Get(Api("models/acme/gated/revision/main"));
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(JsonObject(info.body)->getValue<std::string>("gated"), "auto");
  EXPECT_EQ(Get(Api("models/acme/gated/tree/main")).status, 200);
  for (std::string file : {"config.json", "w.bin"}) {
    SCOPED_TRACE(file);
    const std::string url = hub_->url() + "/acme/gated/resolve/main/" + file;
    RawResponse anonymous = Get(url);
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_EQ(anonymous.header("x-error-code"), "GatedRepo");
    EXPECT_NE(anonymous.header("x-error-message").find("Please log in"), std::string::npos);
    RawResponse stranger = Get(url, "hf_stranger");
    EXPECT_EQ(stranger.status, 403);
    EXPECT_EQ(stranger.header("x-error-code"), "GatedRepo");
    EXPECT_NE(stranger.header("x-error-message").find("not in the authorized list"),
              std::string::npos);
    EXPECT_EQ(Get(url, "hf_granted").status, std::string(file) == "w.bin" ? 302 : 200);
  }
}

TEST_F(HubServerTest, RateLimitThenUnavailableThenServed) {
  hub_->Commit("acme/llm", RepoType::kModel, "main", {{"a.txt", {"a", false}}}, "c");
  hub_->RateLimitNext(2, 7);
  hub_->ServiceUnavailableNext(1, 3);
  RawResponse api = Get(Api("models/acme/llm/revision/main"));
  EXPECT_EQ(api.status, 429);
  EXPECT_EQ(api.header("retry-after"), "7");
  EXPECT_EQ(api.header("ratelimit"), "\"api\";r=0;t=7");
  EXPECT_EQ(api.header("ratelimit-policy"), "\"fixed window\";\"api\";q=500;w=300");
  RawResponse resolve = Get(hub_->url() + "/acme/llm/resolve/main/a.txt");
  EXPECT_EQ(resolve.status, 429);
  EXPECT_EQ(resolve.header("ratelimit"), "\"resolvers\";r=0;t=7");
  EXPECT_EQ(resolve.header("ratelimit-policy"), "\"fixed window\";\"resolvers\";q=3000;w=300");
  RawResponse unavailable = Get(Api("models/acme/llm/revision/main"));
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.header("retry-after"), "3");
  EXPECT_EQ(Get(Api("models/acme/llm/revision/main")).status, 200);
  auto log = hub_->requests();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].status, 429);
  EXPECT_EQ(log[2].status, 503);
}

TEST_F(HubServerTest, WrongBytesKeepTheLength) {
  const std::string small = "a small file of some length";
  const std::string big = testing::RandomBytes(20000, 9);
  const std::string other = testing::RandomBytes(20000, 10);
  hub_->Commit(
      "acme/llm", RepoType::kModel, "main",
      {{"small.txt", {small, false}}, {"big.bin", {big, true}}, {"other.bin", {other, true}}}, "c");
  hub_->ServeWrongBytes("small.txt");
  hub_->ServeWrongBytes(Sha256Hex(big));
  hub_->ServeWrongBytes("other.bin");
  HttpClient client;
  for (const auto& [path, content] : std::vector<std::pair<std::string, std::string>>{
           {"small.txt", small}, {"big.bin", big}, {"other.bin", other}}) {
    SCOPED_TRACE(path);
    auto fetched = client.Fetch(GetOf(hub_->url() + "/acme/llm/resolve/main/" + path), 1 << 20);
    ASSERT_TRUE(fetched.ok()) << fetched.status().ToString();
    EXPECT_EQ(fetched->second.size(), content.size());
    EXPECT_NE(Sha256Hex(fetched->second), Sha256Hex(content));
  }
}

TEST_F(HubServerTest, CutOffDownloadEndsEarlyOnce) {
  const std::string big = testing::RandomBytes(50000, 12);
  const std::string small = testing::RandomBytes(500, 13);
  hub_->Commit("acme/llm", RepoType::kModel, "main",
               {{"big.bin", {big, true}}, {"small.bin", {small, false}}}, "c");
  for (const auto& [path, content] :
       std::vector<std::pair<std::string, std::string>>{{"big.bin", big}, {"small.bin", small}}) {
    SCOPED_TRACE(path);
    hub_->CutOffNextDownload(path, 100);
    HttpClient client;
    std::string received;
    auto sent = client.Send(GetOf(hub_->url() + "/acme/llm/resolve/main/" + path),
                            [&](const char* data, size_t n) {
                              received.append(data, n);
                              return Status::OK();
                            });
    EXPECT_FALSE(sent.ok());
    EXPECT_EQ(received, content.substr(0, 100));
    auto again = client.Fetch(GetOf(hub_->url() + "/acme/llm/resolve/main/" + path), 1 << 20);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->second == content);
  }
}

TEST_F(HubServerTest, CommitReplacesTheFileSetAndBranchesMove) {
  const std::string first =
      hub_->Commit("acme/llm", RepoType::kModel, "main", {{"old.txt", {"old", false}}}, "first");
  const std::string second =
      hub_->Commit("acme/llm", RepoType::kModel, "main", {{"new.txt", {"new", false}}}, "second");
  EXPECT_NE(first, second);
  EXPECT_EQ(Get(hub_->url() + "/acme/llm/resolve/main/old.txt").status, 404);
  EXPECT_EQ(Get(hub_->url() + "/acme/llm/resolve/" + first + "/old.txt").body, "old");
  // A branch made later starts from main; a force-push moves main back.
  hub_->Commit("acme/llm", RepoType::kModel, "dev", {{"dev.txt", {"dev", false}}}, "dev");
  hub_->ResetBranch("acme/llm", RepoType::kModel, "main", first);
  EXPECT_EQ(
      JsonObject(Get(Api("models/acme/llm/revision/main")).body)->getValue<std::string>("sha"),
      first);
  // A branch name with a slash, sent raw as some clients do.
  const std::string feature = hub_->Commit("acme/llm", RepoType::kModel, "feature/x",
                                           {{"f/g.txt", {"g", false}}}, "feature");
  auto listing = JsonArray(Get(Api("models/acme/llm/tree/feature/x/f")).body);
  ASSERT_EQ(listing->size(), 1u);
  EXPECT_EQ(listing->getObject(0)->getValue<std::string>("path"), "f/g.txt");
  EXPECT_EQ(Get(hub_->url() + "/acme/llm/resolve/feature%2Fx/f/g.txt").header("x-repo-commit"),
            feature);
}

}  // namespace
}  // namespace sync_agent
