// Small parsing helpers shared by the HTTP client and the static server.
#pragma once

#include <cstdint>
#include <string_view>

namespace sync_agent {

// Parses 1 to 19 ASCII digits (no sign, no spaces) into *out.
bool ParseDecimal(std::string_view s, uint64_t* out);

}  // namespace sync_agent
