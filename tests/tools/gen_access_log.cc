// Writes an nginx access log in the sync_agent format (scripts/nginx-mirror.conf.example)
// for scripts/bench-stats: a deterministic, realistic mix of repositories
// (models and datasets, plus paths of no repository), methods, statuses,
// small and large files, ranges, speeds and cache statuses over 24 hours.
//
// Usage: gen_access_log LINES OUT [SEED]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Rng {
  uint64_t s;
  uint64_t Next() {  // xorshift64*
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  double Unit() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: gen_access_log LINES OUT [SEED]\n");
    return 2;
  }
  const uint64_t lines = std::strtoull(argv[1], nullptr, 10);
  FILE* out = std::fopen(argv[2], "wb");
  if (out == nullptr) {
    std::perror(argv[2]);
    return 1;
  }
  Rng rng{argc > 3 ? std::strtoull(argv[3], nullptr, 10) | 1 : 0x9E3779B97F4A7C15ULL};
  std::vector<std::string> repos;
  for (int org = 0; org < 12; ++org) {
    for (int m = 0; m < 8; ++m) {
      repos.push_back("/org-" + std::to_string(org) + "/model-" + std::to_string(m) + "b");
    }
  }
  for (int d = 0; d < 8; ++d) repos.push_back("/datasets/data-org/corpus-" + std::to_string(d));
  const char* const small_files[] = {"config.json", "tokenizer.json", "README.md",
                                     "generation_config.json", ".gitattributes"};
  const char* const agents[] = {"curl/7.88.1", "huggingface_hub/0.26.2; python/3.11.2",
                                "Wget/1.21.3", "aria2/1.36.0",
                                "Mozilla/5.0 (X11; Linux x86_64) \\x22quoted\\x22"};
  const char* const caches[] = {"HIT",  "HIT",  "HIT",  "HIT", "HIT", "HIT",
                                "MISS", "MISS", "MISS", "-",   "-",   "EXPIRED"};
  std::vector<char> buf(1 << 22);
  size_t used = 0;
  const int64_t start = 1796169600;  // 2026-12-02T00:00:00Z
  for (uint64_t i = 0; i < lines; ++i) {
    if (used + 1024 > buf.size()) {
      std::fwrite(buf.data(), 1, used, out);
      used = 0;
    }
    const int64_t t = start + static_cast<int64_t>(i * 86400 / (lines ? lines : 1));
    const int64_t day = t / 86400, sec = t % 86400;
    (void)day;
    const char* method = rng.Below(20) == 0 ? "HEAD" : "GET";
    const uint64_t kind = rng.Below(100);
    char path[160];
    int status;
    uint64_t bytes;
    bool large = false;
    if (kind < 3) {
      std::snprintf(path, sizeof path, "/robots.txt");
      status = 404;
      bytes = 153;
    } else if (kind < 5) {
      std::snprintf(path, sizeof path, "/api/models?search=llm");
      status = 200;
      bytes = 2000 + rng.Below(20000);
    } else {
      const std::string& repo = repos[rng.Below(repos.size())];
      if (kind < 60) {
        std::snprintf(path, sizeof path, "%s/%s", repo.c_str(), small_files[rng.Below(5)]);
        bytes = 200 + rng.Below(50000);
      } else {
        std::snprintf(path, sizeof path, "%s/model-%05u-of-00008.safetensors?download=true",
                      repo.c_str(), static_cast<unsigned>(rng.Below(8) + 1));
        bytes = (1ULL << 20) + rng.Below(1ULL << 30);  // sums stay exact in awk's doubles
        large = true;
      }
      const uint64_t s = rng.Below(100);
      status = s < 72 ? 200 : s < 87 ? 206 : s < 92 ? 304 : s < 97 ? 404 : s < 99 ? 500 : 416;
      if (large && status == 206) bytes = (1ULL << 20) * (1 + rng.Below(256));
      if (status == 304 || status == 416) bytes = 0;
      if (status == 404 || status == 500) bytes = 150 + rng.Below(50);
    }
    if (method[0] == 'H') bytes = 0;
    // Speeds spread log-normally around 40 MB/s; small responses are quick.
    const double speed = 40e6 * std::exp(1.2 * (rng.Unit() + rng.Unit() + rng.Unit() - 1.5));
    double rt =
        large ? static_cast<double>(bytes) / speed : 0.001 * static_cast<double>(rng.Below(30));
    char when[40];
    std::snprintf(when, sizeof when, "02/%s/2026:%02d:%02d:%02d +0000", kMonths[11],
                  static_cast<int>(sec / 3600), static_cast<int>(sec / 60 % 60),
                  static_cast<int>(sec % 60));
    used += static_cast<size_t>(std::snprintf(
        buf.data() + used, buf.size() - used,
        "10.%u.%u.%u - - [%s] \"%s %s HTTP/1.1\" %d %llu \"-\" \"%s\" %.3f %s\n",
        static_cast<unsigned>(rng.Below(256)), static_cast<unsigned>(rng.Below(256)),
        static_cast<unsigned>(rng.Below(256)), when, method, path, status,
        static_cast<unsigned long long>(bytes), agents[rng.Below(5)], rt, caches[rng.Below(12)]));
  }
  std::fwrite(buf.data(), 1, used, out);
  if (std::fclose(out) != 0) {
    std::perror(argv[2]);
    return 1;
  }
  return 0;
}
