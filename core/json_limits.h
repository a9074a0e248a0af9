// Limits on JSON read from files a user or a project hands us: nesting depth is checked before the
// parser (nlohmann's) runs, since its recursion (and its dump, on error paths) would overflow the stack.
#pragma once

#include <string>
#include <string_view>

namespace polymoe {

inline constexpr int kMaxJsonDepth = 64; // configs, safetensors headers and indexes nest 3-4 levels

// Throws FormatError "WHERE: JSON nested deeper than N levels at byte B" when arrays and objects
// (outside strings) nest deeper than maxDepth. Does not validate anything else.
void checkJsonDepth(std::string_view text, const std::string &where, int maxDepth = kMaxJsonDepth);

} // namespace polymoe
