#include "tests/support/lfs_server.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "common/base/json_text.h"
#include "common/hash/content_hasher.h"

namespace sync_agent::testing {

struct LfsServer::State {
  mutable std::mutex mu;
  std::map<std::string, std::string> objects;
  std::set<std::string> missing_in_batch, missing_on_download, wrong_bytes;
  int fail_batch = 0;
  std::map<std::string, size_t> cut_off;
  std::string authorization;
  std::vector<std::string> requests;
  std::string base_url;
};

namespace {

constexpr const char* kMediaType = "application/vnd.git-lfs+json";

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(std::shared_ptr<LfsServer::State> state) : state_(std::move(state)) {}

  void handleRequest(Poco::Net::HTTPServerRequest& req,
                     Poco::Net::HTTPServerResponse& resp) override {
    std::string body;
    Poco::StreamCopier::copyToString(req.stream(), body);
    const std::string uri = req.getURI();
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->requests.push_back(req.getMethod() + " " + uri +
                               (req.has("Range") ? " Range: " + req.get("Range") : ""));
    const std::string batch_suffix = "/info/lfs/objects/batch";
    if (req.getMethod() == "POST" && uri.size() > batch_suffix.size() &&
        uri.compare(uri.size() - batch_suffix.size(), batch_suffix.size(), batch_suffix) == 0) {
      Batch(req, body, resp);
    } else if (req.getMethod() == "GET" && uri.rfind("/objects/", 0) == 0) {
      Object(req, uri.substr(9), resp);
    } else {
      Send(resp, Poco::Net::HTTPResponse::HTTP_NOT_FOUND, "text/plain", "no such endpoint\n");
    }
  }

 private:
  static void Send(Poco::Net::HTTPServerResponse& resp, Poco::Net::HTTPResponse::HTTPStatus status,
                   const std::string& type, const std::string& body) {
    resp.setStatusAndReason(status);
    resp.setContentType(type);
    resp.setContentLength64(static_cast<Poco::Int64>(body.size()));
    resp.send() << body;
  }

  void Batch(Poco::Net::HTTPServerRequest& req, const std::string& body,
             Poco::Net::HTTPServerResponse& resp) {
    if (!state_->authorization.empty() && req.get("Authorization", "") != state_->authorization) {
      Send(resp, Poco::Net::HTTPResponse::HTTP_UNAUTHORIZED, kMediaType,
           "{\"message\": \"credentials needed\"}");
      return;
    }
    if (state_->fail_batch != 0) {
      Send(resp, static_cast<Poco::Net::HTTPResponse::HTTPStatus>(state_->fail_batch), kMediaType,
           "{\"message\": \"the LFS server is having a bad day\"}");
      return;
    }
    Poco::JSON::Parser parser;
    Poco::JSON::Object::Ptr in = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    Poco::JSON::Array::Ptr objects = in->getArray("objects");
    std::string out = "{\"transfer\": \"basic\", \"objects\": [";
    for (unsigned i = 0; i < objects->size(); ++i) {
      Poco::JSON::Object::Ptr o = objects->getObject(i);
      std::string oid = o->getValue<std::string>("oid");
      uint64_t size = o->getValue<uint64_t>("size");
      if (i) out += ", ";
      out += "{\"oid\": " + JsonQuote(oid) + ", \"size\": " + std::to_string(size);
      if (state_->missing_in_batch.count(oid) || !state_->objects.count(oid)) {
        out += ", \"error\": {\"code\": 404, \"message\": \"Object does not exist\"}}";
        continue;
      }
      out += ", \"authenticated\": true, \"actions\": {\"download\": {\"href\": " +
             JsonQuote(state_->base_url + "/objects/" + oid) +
             ", \"header\": {\"X-Download-Token\": \"t-" + oid.substr(0, 8) + "\"}}}}";
    }
    out += "]}";
    Send(resp, Poco::Net::HTTPResponse::HTTP_OK, kMediaType, out);
  }

  void Object(Poco::Net::HTTPServerRequest& req, const std::string& oid,
              Poco::Net::HTTPServerResponse& resp) {
    // Downloads must carry the header the batch answer gave for them.
    if (req.get("X-Download-Token", "") != "t-" + oid.substr(0, 8)) {
      Send(resp, Poco::Net::HTTPResponse::HTTP_FORBIDDEN, "text/plain", "no token\n");
      return;
    }
    auto it = state_->objects.find(oid);
    if (it == state_->objects.end() || state_->missing_on_download.count(oid)) {
      Send(resp, Poco::Net::HTTPResponse::HTTP_NOT_FOUND, "text/plain", "gone\n");
      return;
    }
    std::string bytes = it->second;
    if (state_->wrong_bytes.count(oid) && !bytes.empty()) bytes[bytes.size() / 2] ^= 0x5a;
    size_t first = 0;
    size_t last = bytes.empty() ? 0 : bytes.size() - 1;
    const std::string range = req.get("Range", "");
    if (range.rfind("bytes=", 0) == 0 && range.find('-') != std::string::npos) {
      size_t dash = range.find('-');
      first = std::stoull(range.substr(6, dash - 6));
      if (dash + 1 < range.size()) last = std::min<size_t>(last, std::stoull(range.substr(dash + 1)));
      if (first >= bytes.size()) {
        resp.set("Content-Range", "bytes */" + std::to_string(bytes.size()));
        Send(resp, Poco::Net::HTTPResponse::HTTP_REQUESTED_RANGE_NOT_SATISFIABLE, "text/plain", "");
        return;
      }
      resp.set("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) +
                                    "/" + std::to_string(bytes.size()));
      bytes.resize(last + 1);
      resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_PARTIAL_CONTENT);
    } else {
      resp.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_OK);
    }
    resp.setContentType("application/octet-stream");
    resp.setContentLength64(static_cast<Poco::Int64>(bytes.size() - first));
    auto cut = state_->cut_off.find(oid);
    if (cut != state_->cut_off.end()) {
      size_t n = std::min(cut->second, bytes.size() - first);
      state_->cut_off.erase(cut);
      resp.setKeepAlive(false);
      std::ostream& out = resp.send();
      out.write(bytes.data() + first, static_cast<std::streamsize>(n));
      out.flush();
      // Returning with the body short makes Poco close the connection.
      return;
    }
    resp.send().write(bytes.data() + first, static_cast<std::streamsize>(bytes.size() - first));
  }

  std::shared_ptr<LfsServer::State> state_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(std::shared_ptr<LfsServer::State> state) : state_(std::move(state)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(state_);
  }

 private:
  std::shared_ptr<LfsServer::State> state_;
};

}  // namespace

struct LfsServer::Rep {
  std::unique_ptr<Poco::Net::HTTPServer> server;
  int port = 0;
};

LfsServer::LfsServer() : state_(std::make_shared<State>()), rep_(std::make_unique<Rep>()) {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  rep_->port = socket.address().port();
  state_->base_url = "http://127.0.0.1:" + std::to_string(rep_->port);
  auto* params = new Poco::Net::HTTPServerParams;
  params->setKeepAlive(true);
  rep_->server = std::make_unique<Poco::Net::HTTPServer>(new Factory(state_), socket, params);
  rep_->server->start();
}

LfsServer::~LfsServer() { rep_->server->stopAll(true); }

std::string LfsServer::url() const { return state_->base_url; }

std::string LfsServer::Add(const std::string& content) {
  std::string oid = Sha256Hex(content);
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->objects[oid] = content;
  return oid;
}

void LfsServer::MissingInBatch(const std::string& oid) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->missing_in_batch.insert(oid);
}
void LfsServer::CutOffNextDownload(const std::string& oid, size_t n) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->cut_off[oid] = n;
}

void LfsServer::MissingOnDownload(const std::string& oid) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->missing_on_download.insert(oid);
}
void LfsServer::ServeWrongBytes(const std::string& oid) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->wrong_bytes.insert(oid);
}
void LfsServer::FailBatch(int http_status) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->fail_batch = http_status;
}
void LfsServer::RequireAuthorization(const std::string& value) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->authorization = value;
}
std::vector<std::string> LfsServer::requests() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->requests;
}

}  // namespace sync_agent::testing
