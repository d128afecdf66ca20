// gen_publish_root: PublishRootGenerator (tests/support/publish_root_generator.h)
// as a standalone program, for scripts/bench-scale.
//
//   gen_publish_root --out ROOT --work DIR --repos N [--org ORG] [--generation G]
//                    [--changed-percent P] [--weights-bytes B] [--big-bytes B]
//
// Publishes generation G (default 0) of repositories 0 .. N-1, or, with
// --changed-percent, of round(N * P / 100) of them spread evenly over the
// range (at least one when P > 0). Prints one line per repository published:
//   published <org/name> <revision> pointer=<bytes> manifest=<bytes> objects=<count>
//   object_bytes=<bytes>
// and last a line "total repos=<n> bytes=<pointer + manifest + object bytes>".
// Exits 2 on a bad command line, 1 when a publish fails (with its message).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/support/publish_root_generator.h"

namespace {

bool ParseCount(const char* text, unsigned long long* out) {
  char* end = nullptr;
  *out = std::strtoull(text, &end, 10);
  return end != text && *end == '\0';
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "gen_publish_root: %s\nusage: gen_publish_root --out ROOT --work DIR --repos N "
               "[--org ORG] [--generation G] [--changed-percent P] [--weights-bytes B] "
               "[--big-bytes B]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  sync_agent::testing::PublishRootGenerator::Options options;
  unsigned long long repos = 0, generation = 0, weights = options.weights_bytes, big = 0;
  double percent = -1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) return Usage(("missing value after " + arg).c_str());
    const char* value = argv[++i];
    bool ok = true;
    if (arg == "--out") {
      options.root = value;
    } else if (arg == "--work") {
      options.work_dir = value;
    } else if (arg == "--org") {
      options.org = value;
    } else if (arg == "--repos") {
      ok = ParseCount(value, &repos);
    } else if (arg == "--generation") {
      ok = ParseCount(value, &generation);
    } else if (arg == "--weights-bytes") {
      ok = ParseCount(value, &weights);
    } else if (arg == "--big-bytes") {
      ok = ParseCount(value, &big);
    } else if (arg == "--changed-percent") {
      char* end = nullptr;
      percent = std::strtod(value, &end);
      ok = end != value && *end == '\0' && percent >= 0 && percent <= 100;
    } else {
      return Usage(("unknown argument " + arg).c_str());
    }
    if (!ok) return Usage(("bad value for " + arg + ": " + value).c_str());
  }
  if (options.root.empty() || options.work_dir.empty() || repos == 0) {
    return Usage("--out, --work and --repos (at least 1) are needed");
  }
  options.weights_bytes = static_cast<size_t>(weights);
  options.big_bytes = big;

  std::vector<size_t> indices;
  if (percent < 0) {
    for (size_t i = 0; i < repos; ++i) indices.push_back(i);
  } else {
    auto count = static_cast<size_t>(std::llround(static_cast<double>(repos) * percent / 100.0));
    if (count == 0 && percent > 0) count = 1;
    for (size_t k = 0; k < count; ++k) indices.push_back(k * repos / count);
  }

  sync_agent::testing::PublishRootGenerator generator(options);
  unsigned long long total = 0;
  for (size_t index : indices) {
    auto r = generator.Publish(index, static_cast<int>(generation));
    if (!r.ok()) {
      std::fprintf(stderr, "gen_publish_root: %s\n", r.status().ToString().c_str());
      return 1;
    }
    std::printf("published %s %s pointer=%llu manifest=%llu objects=%llu object_bytes=%llu\n",
                r->repo.c_str(), r->revision.c_str(),
                static_cast<unsigned long long>(r->pointer_bytes),
                static_cast<unsigned long long>(r->manifest_bytes),
                static_cast<unsigned long long>(r->new_objects),
                static_cast<unsigned long long>(r->new_object_bytes));
    total += r->pointer_bytes + r->manifest_bytes + r->new_object_bytes;
  }
  sync_agent::Status index = generator.WriteOrgIndex();
  if (!index.ok()) {
    std::fprintf(stderr, "gen_publish_root: %s\n", index.ToString().c_str());
    return 1;
  }
  std::printf("total repos=%zu bytes=%llu\n", indices.size(), total);
  return 0;
}
