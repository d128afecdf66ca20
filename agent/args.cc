#include "agent/args.h"

#include <algorithm>

namespace sync_agent {

bool ParseArgs(const std::vector<std::string>& args, const std::vector<OptionSpec>& specs,
               ParsedArgs* out, std::string* error) {
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a.size() < 2 || a[0] != '-') {
      out->positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string name = a[1] == '-' ? a.substr(2) : a.substr(1);
    std::string value;
    bool has_inline = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    if (name == "h") name = "help";
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptionSpec& s) { return s.name == name; });
    if (spec == specs.end()) {
      *error = "unknown option " + a;
      return false;
    }
    if (spec->takes_value) {
      if (!has_inline) {
        if (i + 1 >= args.size()) {
          *error = "option --" + name + " needs a value (" + spec->value_name + ")";
          return false;
        }
        value = args[++i];
      }
    } else if (has_inline) {
      *error = "option --" + name + " takes no value";
      return false;
    }
    out->options[name] = value;
  }
  return true;
}

std::string FormatOptions(const std::vector<OptionSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    std::string left = "  --" + s.name + (s.takes_value ? " " + s.value_name : "");
    if (left.size() < 26)
      left.resize(26, ' ');
    else
      left += "  ";
    out += left + s.help + "\n";
  }
  return out;
}

}  // namespace sync_agent
