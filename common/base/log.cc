#include "common/base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "common/base/json_text.h"
#include "common/base/time_util.h"

namespace sync_agent {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kPlain};
std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_mu;

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format = format; }
void SetLogLevel(LogLevel level) { g_level = level; }

bool ParseLogFormat(std::string_view text, LogFormat* out) {
  if (text == "plain") {
    *out = LogFormat::kPlain;
    return true;
  }
  if (text == "json") {
    *out = LogFormat::kJson;
    return true;
  }
  return false;
}

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (level < g_level.load()) return;
  std::string line;
  if (g_format.load() == LogFormat::kJson) {
    line = "{\"ts\":";
    AppendJsonString(&line, FormatIsoTime(std::chrono::system_clock::now(), true));
    line += ",\"level\":";
    AppendJsonString(&line, LevelName(level));
    line += ",\"msg\":";
    AppendJsonString(&line, message);
    for (const auto& [k, v] : fields) {
      line.push_back(',');
      AppendJsonString(&line, k);
      line.push_back(':');
      AppendJsonString(&line, v);
    }
    line += "}\n";
  } else {
    if (level != LogLevel::kInfo) {
      line += LevelName(level);
      line += ": ";
    }
    line.append(message);
    for (const auto& [k, v] : fields) {
      line.push_back(' ');
      line.append(k);
      line.push_back('=');
      bool quote = v.empty() || v.find_first_of(" \t\"") != std::string::npos;
      if (quote) {
        AppendJsonString(&line, v);
      } else {
        line += v;
      }
    }
    line.push_back('\n');
  }
  std::lock_guard<std::mutex> lock(g_mu);
  // One write per line so concurrent processes do not interleave within a line.
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

}  // namespace sync_agent
