// Process-wide logger. Lines go to stderr; journald adds timestamps, so the
// plain format carries none. The JSON format writes one object per line with
// a timestamp, for log shippers. Thread safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace sync_agent {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };
enum class LogFormat { kPlain, kJson };

// Key/value pairs attached to a log line ("repo", "acme/llm-7b").
using LogField = std::pair<std::string_view, std::string>;

void SetLogFormat(LogFormat format);
void SetLogLevel(LogLevel level);
// Parses "plain" or "json"; returns false for anything else.
bool ParseLogFormat(std::string_view text, LogFormat* out);

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view m, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kInfo, m, f);
}
inline void LogWarning(std::string_view m, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kWarning, m, f);
}
inline void LogError(std::string_view m, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kError, m, f);
}
inline void LogDebug(std::string_view m, std::initializer_list<LogField> f = {}) {
  Log(LogLevel::kDebug, m, f);
}

}  // namespace sync_agent
