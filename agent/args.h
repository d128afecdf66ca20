// A small command-line parser: positional arguments plus --name[=value]
// options declared per command, so every unknown option is an error that
// names it.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace sync_agent {

struct OptionSpec {
  std::string name;  // without dashes
  bool takes_value = false;
  std::string value_name;  // for help, e.g. "FILE"
  std::string help;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;  // flags map to ""
  bool Has(const std::string& name) const { return options.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
};

// Parses args (without the program and command names). On error returns
// false and sets *error to a message naming the bad argument.
bool ParseArgs(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs,
               ParsedArgs* out, std::string* error);
// "  --config FILE   the config file ..." lines.
std::string FormatOptions(const std::vector<OptionSpec>& specs);

}  // namespace sync_agent
