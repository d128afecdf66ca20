// Block-level deltas end to end: the real sync-agent binary publishes v1 and
// v2 of a weight file, a real nginx serves them, and the node syncs v1 then
// v2. nginx's access log says how many bytes crossed the wire; status says
// how each file was obtained. Then the published delta or signature is
// damaged in every way we can think of, and the node must fall back to the
// next way and still serve exactly v2.
#include <cstring>
#include <functional>

#include "common/delta/rsync_delta.h"
#include "common/hash/content_hasher.h"
#include "tests/support/agent_fixture.h"
#include "tests/support/fault_proxy.h"
#include "tests/support/publish_tamper.h"
#include "tests/support/tree_util.h"

namespace sync_agent::testing {
namespace {

constexpr size_t kSize = 8 << 20;  // block_len 4096 for this size
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kSignatureBytes = 12 + (kSize / kBlock) * 20;

enum class Mode { kDelta, kSignature };

class DeltaSyncBase : public AgentFixture {
 protected:
  void SetUp() override {
    if (!NginxServer::Available()) GTEST_SKIP() << "nginx is not installed (apt-get install nginx)";
  }

  // Starts nginx with options, then publishes and syncs v1 (kSize random
  // bytes, in v1_); returns the access log length afterwards. The test has
  // failed if nginx did not start.
  size_t StartWithV1(NginxServer::Options options = {}) {
    url_ = StartNginx(options);
    if (url_.empty()) return 0;
    v1_ = RandomBytes(kSize, 1);
    WriteFile(model_ + "/config.json", "{\"layers\": 2}");
    WriteFile(model_ + "/weights.bin", v1_);
    Publish();
    WriteConfig({url_});
    ProcessResult r = Once();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(nginx_->WaitForAccessLog(3));
    return nginx_->ReadAccessLog().size();
  }

  // Body bytes nginx sent after the first `skip` log entries, per URI.
  std::map<std::string, uint64_t> BytesSince(size_t skip, size_t expect_at_least) {
    EXPECT_TRUE(nginx_->WaitForAccessLog(skip + expect_at_least));
    std::map<std::string, uint64_t> bytes;
    auto log = nginx_->ReadAccessLog();
    for (size_t i = skip; i < log.size(); ++i) bytes[log[i].uri] += log[i].bytes_sent;
    return bytes;
  }
  static uint64_t Total(const std::map<std::string, uint64_t>& bytes) {
    uint64_t t = 0;
    for (const auto& [uri, n] : bytes) t += n;
    return t;
  }

  // The file's row of the last update in `status --json`: method and note.
  std::string FileField(const std::string& path, const std::string& field) {
    ProcessResult st = Status({"--json", kRepo});
    std::string key = "\"path\":\"" + path + "\"";
    size_t at = st.out.find(key);
    if (at == std::string::npos) return "(no row for " + path + " in: " + st.out + ")";
    size_t end = st.out.find('}', at);
    std::string row = st.out.substr(at, end - at);
    std::string fkey = "\"" + field + "\":";
    size_t f = row.find(fkey);
    if (f == std::string::npos) return "(no " + field + ")";
    std::string value = row.substr(f + fkey.size());
    if (value.rfind("null", 0) == 0) return "";
    if (value[0] != '"') return value.substr(0, value.find_first_of(",}"));
    return value.substr(1, value.find('"', 1) - 1);
  }

  std::string RevisionDir() const { return pub_ + "/" + kRepo; }

  void ReplacePublished(const std::string& rel, const std::string& bytes, bool fix_manifest) {
    EXPECT_EQ(ReplacePublishedFile(RevisionDir(), rel, bytes, fix_manifest), "");
  }
  std::string DeltaRel(const std::string& from, const std::string& to) const {
    return DeltaRelPath(from, to);
  }
  std::string SignatureRel(const std::string& content) const {
    return SignatureRelPath(content, kBlock);
  }

  std::string url_;
  std::string v1_;
};

// ---- every kind of change, through nginx, delta and signature ----------

struct Change {
  const char* name;
  std::function<std::string(const std::string&)> make;
  uint64_t changed_bytes;  // bytes of v2 that v1 does not have (roughly)
  bool whole;              // nothing to reuse: the whole file is expected
};

std::string Scattered(const std::string& v1) {
  std::string v2 = v1;
  std::string noise = RandomBytes(10 << 10, 77);
  for (int i = 0; i < 8; ++i) {
    size_t at = (static_cast<size_t>(i) * 997 * 1013 + 12345) % (v2.size() - noise.size());
    v2.replace(at, noise.size(), noise);
  }
  return v2;
}

const Change kChanges[] = {
    {"ScatteredRewrite", Scattered, 8 * (10 << 10), false},
    {"InsertAtStart", [](const std::string& v1) { return RandomBytes(200, 5) + v1; }, 200, false},
    {"Append", [](const std::string& v1) { return v1 + RandomBytes(kSize / 10, 6); }, kSize / 10,
     false},
    {"Truncate", [](const std::string& v1) { return v1.substr(0, kSize - kSize / 10); }, 0, false},
    {"FullRewrite", [](const std::string&) { return RandomBytes(kSize, 7); }, kSize, true},
};

class DeltaChangeTest : public DeltaSyncBase,
                        public ::testing::WithParamInterface<std::tuple<Mode, int>> {};

TEST_P(DeltaChangeTest, OnlyWhatChangedCrossesTheWire) {
  const Mode mode = std::get<0>(GetParam());
  const Change& change = kChanges[std::get<1>(GetParam())];
  size_t before = StartWithV1();
  if (HasFailure()) return;
  const std::string& v1 = v1_;

  std::string v2 = change.make(v1);
  WriteFile(model_ + "/weights.bin", v2);
  Publish(mode == Mode::kSignature ? std::vector<std::string>{"--delta-depth", "0"}
                                   : std::vector<std::string>{});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");

  auto bytes = BytesSince(before, 2);
  uint64_t total = Total(bytes);
  std::string method = FileField("weights.bin", "method");
  if (change.whole) {
    EXPECT_EQ(method, "whole");
    EXPECT_GE(total, kSize);
    // The node looked, found nothing worth matching, and says so.
    EXPECT_NE(FileField("weights.bin", "note"), "");
    return;
  }
  EXPECT_EQ(method, mode == Mode::kDelta ? "delta" : "ranges") << r.err;
  // What crossed the wire: the changed bytes, at most a block on each side
  // of each changed region, the signature, the pointer and the manifest.
  uint64_t bound = change.changed_bytes + 8 * 2 * kBlock + kSignatureBytes + (16 << 10);
  EXPECT_LE(total, bound) << "bytes sent by nginx for the update";
  EXPECT_LT(total, kSize / 4);
  // The new object itself: never requested with a delta; only ranges otherwise.
  std::string object_uri = ObjectUri(v2);
  auto log = nginx_->ReadAccessLog();
  for (size_t i = before; i < log.size(); ++i) {
    if (log[i].uri != object_uri) continue;
    EXPECT_EQ(mode, Mode::kSignature) << "object fetched despite a published delta";
    EXPECT_EQ(log[i].status, 206);
    EXPECT_EQ(log[i].range.rfind("bytes=", 0), 0u);
  }
  // status shows the saving.
  ProcessResult st = Status();
  EXPECT_NE(st.out.find("delta saving:    last update"), std::string::npos) << st.out;
  uint64_t reused = std::stoull(FileField("weights.bin", "bytes_reused"));
  EXPECT_GE(reused + change.changed_bytes + 8 * 2 * kBlock, v2.size());
}

INSTANTIATE_TEST_SUITE_P(
    Nginx, DeltaChangeTest,
    ::testing::Combine(::testing::Values(Mode::kDelta, Mode::kSignature),
                       ::testing::Range(0, static_cast<int>(std::size(kChanges)))),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == Mode::kDelta ? "Delta" : "Signature") +
             kChanges[std::get<1>(info.param)].name;
    });

class DeltaSyncTest : public DeltaSyncBase {};

TEST_F(DeltaSyncTest, UnchangedFileCostsNoDownload) {
  size_t before = StartWithV1();
  if (HasFailure()) return;
  const std::string& v1 = v1_;
  WriteFile(model_ + "/config.json", "{\"layers\": 3}");
  Publish();
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  auto bytes = BytesSince(before, 3);
  EXPECT_LT(Total(bytes), 4096u);
  for (const auto& [uri, n] : bytes) {
    EXPECT_EQ(uri.find(Sha256Hex(v1)), std::string::npos) << uri << " was requested";
  }
  EXPECT_EQ(FileField("weights.bin", "method"), "reuse");
}

// ---- damaged deltas: the node falls back to signature matching ---------

struct DeltaDamage {
  const char* name;
  // Returns the damaged delta; *fix_manifest: publish matching size/sha256.
  std::function<std::string(const std::string& delta, uint64_t basis_size, bool* fix_manifest)>
      damage;
  const char* note_has;  // in the fallback note
};

std::string BigEndian32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}

const DeltaDamage kDeltaDamage[] = {
    {"FlippedInTransit",
     [](const std::string& d, uint64_t, bool* fix) {
       std::string m = d;
       m[m.size() / 2] ^= 0x40;
       *fix = false;
       return m;
     },
     "sha256"},
    {"WrongLiteralWithMatchingHash",
     [](const std::string& d, uint64_t, bool* fix) {
       // magic, LITERAL(200) as 0x41 + 1-byte length, then the 200 bytes.
       std::string m = d;
       m[4 + 2 + 100] ^= 0x01;
       *fix = true;
       return m;
     },
     "sha256"},
    {"CopyOutsideTheBasis",
     [](const std::string&, uint64_t basis_size, bool* fix) {
       // magic, COPY(offset 1 byte = 0, length 4 bytes = basis + 1000), END.
       std::string m = BigEndian32(0x72730236) + std::string(1, '\x47') + std::string(1, '\0') +
                       BigEndian32(static_cast<uint32_t>(basis_size + 1000)) +
                       std::string(1, '\0');
       *fix = true;
       return m;
     },
     "past the basis"},
    {"Truncated",
     [](const std::string& d, uint64_t, bool* fix) {
       *fix = true;
       return d.substr(0, d.size() / 2);
     },
     "delta byte"},
    {"WrongMagic",
     [](const std::string& d, uint64_t, bool* fix) {
       std::string m = d;
       m[0] = 'X';
       *fix = true;
       return m;
     },
     "magic"},
};

class DeltaDamageTest : public DeltaSyncBase, public ::testing::WithParamInterface<int> {};

TEST_P(DeltaDamageTest, FallsBackToSignatureMatchingAndServesExactlyV2) {
  const DeltaDamage& damage = kDeltaDamage[GetParam()];
  StartWithV1();
  if (HasFailure()) return;
  const std::string& v1 = v1_;
  std::string v2 = RandomBytes(200, 5) + v1;  // a delta starting with a 200-byte literal
  WriteFile(model_ + "/weights.bin", v2);
  Publish();
  std::string rel = DeltaRel(v1, v2);
  std::string delta = ReadFile(RevisionDir() + "/" + rel);
  ASSERT_EQ(static_cast<unsigned char>(delta[4]), 0x41) << "delta layout changed";
  bool fix = false;
  std::string damaged = damage.damage(delta, v1.size(), &fix);
  ReplacePublished(rel, damaged, fix);
  if (HasFailure()) return;

  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(FileField("weights.bin", "method"), "ranges") << r.err;
  std::string note = FileField("weights.bin", "note");
  EXPECT_NE(note.find("delta from"), std::string::npos) << note;
  EXPECT_NE(note.find(damage.note_has), std::string::npos) << note;
  EXPECT_NE(r.err.find("falling back"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Nginx, DeltaDamageTest,
                         ::testing::Range(0, static_cast<int>(std::size(kDeltaDamage))),
                         [](const auto& info) { return kDeltaDamage[info.param].name; });

// ---- damaged signatures: the node falls back to the whole file ---------

struct SignatureDamage {
  const char* name;
  std::function<std::string(const std::string& sig, bool* fix_manifest)> damage;
};

const SignatureDamage kSignatureDamage[] = {
    {"FlippedInTransit",
     [](const std::string& s, bool* fix) {
       std::string m = s;
       m[m.size() / 3] ^= 0x10;
       *fix = false;
       return m;
     }},
    {"CutInsideABlockEntry",
     [](const std::string& s, bool* fix) {
       *fix = true;
       return s.substr(0, s.size() - 7);
     }},
    {"TooFewBlocksForTheFile",
     [](const std::string& s, bool* fix) {
       *fix = true;
       return s.substr(0, s.size() - 20 * 10);
     }},
    {"HugeBlockLength",
     [](const std::string& s, bool* fix) {
       std::string m = s;
       m.replace(4, 4, BigEndian32(0x7fffffff));
       *fix = true;
       return m;
     }},
};

class SignatureDamageTest : public DeltaSyncBase, public ::testing::WithParamInterface<int> {};

TEST_P(SignatureDamageTest, FallsBackToTheWholeFileAndServesExactlyV2) {
  const SignatureDamage& damage = kSignatureDamage[GetParam()];
  StartWithV1();
  if (HasFailure()) return;
  const std::string& v1 = v1_;
  std::string v2 = Scattered(v1);
  WriteFile(model_ + "/weights.bin", v2);
  Publish({"--delta-depth", "0"});
  std::string rel = SignatureRel(v2);
  bool fix = false;
  ReplacePublished(rel, damage.damage(ReadFile(RevisionDir() + "/" + rel), &fix), fix);
  if (HasFailure()) return;

  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(FileField("weights.bin", "method"), "whole");
  std::string note = FileField("weights.bin", "note");
  EXPECT_NE(note.find("signature matching against"), std::string::npos) << note;
  EXPECT_NE(note.find("failed"), std::string::npos) << note;
}

INSTANTIATE_TEST_SUITE_P(Nginx, SignatureDamageTest,
                         ::testing::Range(0, static_cast<int>(std::size(kSignatureDamage))),
                         [](const auto& info) { return kSignatureDamage[info.param].name; });

TEST_F(DeltaSyncTest, AWeakSumThatLiesIsCaughtAndMatchedAgainWithStrongSums) {
  StartWithV1();
  if (HasFailure()) return;
  const std::string& v1 = v1_;
  std::string v2 = Scattered(v1);
  WriteFile(model_ + "/weights.bin", v2);
  Publish({"--delta-depth", "0"});
  // Give a changed block of v2 the weak sum of v1's block at the same place:
  // the aligned fast path then takes v1's bytes for it, which the sha256
  // check must refuse.
  std::string rel = SignatureRel(v2);
  std::string sig = ReadFile(RevisionDir() + "/" + rel);
  const uint64_t block = 12345 / kBlock;  // the first changed region starts there
  ASSERT_NE(v1.substr(block * kBlock, kBlock), v2.substr(block * kBlock, kBlock));
  uint32_t lie = RabinKarpWeakSum(v1.data() + block * kBlock, kBlock);
  sig.replace(12 + block * 20, 4, BigEndian32(lie));
  ReplacePublished(rel, sig, /*fix_manifest=*/true);
  if (HasFailure()) return;

  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(FileField("weights.bin", "method"), "ranges");
  std::string note = FileField("weights.bin", "note");
  EXPECT_NE(note.find("aligned block match did not verify"), std::string::npos) << note;
  EXPECT_NE(r.err.find("rolling, strong sums"), std::string::npos) << r.err;
}

// ---- servers with limited range support --------------------------------

TEST_F(DeltaSyncTest, LargeRangeSetsGoOverSeveralConnectionsAtOnce) {
  size_t before = StartWithV1();
  if (HasFailure()) return;
  // Three quarters of every MiB rewritten: 6 MiB of ranges, asked as
  // requests of at most 4 MiB each, over connections that run at once.
  std::string v2 = v1_;
  for (size_t mib = 0; mib < 8; ++mib) {
    v2.replace(mib * (1 << 20) + 4096, 768 << 10, RandomBytes(768 << 10, 40 + mib));
  }
  WriteFile(model_ + "/weights.bin", v2);
  Publish({"--delta-depth", "0"});
  FaultProxy proxy(nginx_->port());
  WriteConfig({proxy.url()}, "connections_per_file = 4\n");
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(FileField("weights.bin", "method"), "ranges") << r.err;
  auto bytes = BytesSince(before, 3);
  // Only the rewritten bytes (and the signature) crossed the wire.
  EXPECT_LT(bytes[ObjectUri(v2)], (6u << 20) + (256u << 10));
  EXPECT_GE(bytes[ObjectUri(v2)], 6u << 20);
  int range_requests = 0;
  auto log = nginx_->ReadAccessLog();
  for (size_t i = before; i < log.size(); ++i) {
    range_requests += log[i].uri == ObjectUri(v2) && log[i].status == 206;
  }
  EXPECT_GE(range_requests, 2);
  EXPECT_GE(proxy.max_active(), 2) << "the range requests went one after another";
}

TEST_F(DeltaSyncTest, ServerWithOneRangePerRequestStillGetsRanges) {
  NginxServer::Options o;
  o.multi_range_ok = false;  // max_ranges 1: several ranges are answered with 200
  size_t before = StartWithV1(o);
  if (HasFailure()) return;
  const std::string& v1 = v1_;
  std::string v2 = Scattered(v1);
  WriteFile(model_ + "/weights.bin", v2);
  Publish({"--delta-depth", "0"});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(FileField("weights.bin", "method"), "ranges") << r.err;
  EXPECT_NE(r.err.find("one at a time"), std::string::npos) << r.err;
  ASSERT_TRUE(nginx_->WaitForAccessLog(before + 3));
  int single = 0;
  auto log = nginx_->ReadAccessLog();
  for (size_t i = before; i < log.size(); ++i) {
    if (log[i].uri == ObjectUri(v2) && log[i].status == 206) {
      EXPECT_EQ(log[i].range.find(','), std::string::npos) << log[i].range;
      ++single;
    }
  }
  EXPECT_GE(single, 8);
}

TEST_F(DeltaSyncTest, ServerWithoutRangesGetsTheWholeFile) {
  NginxServer::Options o;
  o.ranges_ok = false;  // max_ranges 0: every answer is 200 with the whole file
  StartWithV1(o);
  if (HasFailure()) return;
  const std::string& v1 = v1_;
  std::string v2 = Scattered(v1);
  WriteFile(model_ + "/weights.bin", v2);
  Publish({"--delta-depth", "0"});
  ProcessResult r = Once();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(DiffTrees(model_, Served()), "");
  EXPECT_EQ(FileField("weights.bin", "method"), "whole");
  std::string note = FileField("weights.bin", "note");
  EXPECT_NE(note.find("Range"), std::string::npos) << note;
}

}  // namespace
}  // namespace sync_agent::testing
