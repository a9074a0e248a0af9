// Writing files so that a crash never leaves a half-written one: a temporary file in the same
// folder, flushed and synced, then renamed over the target.
#pragma once

#include <filesystem>
#include <string_view>

namespace polymoe {

void writeFileAtomically(const std::filesystem::path &path, std::string_view content);

} // namespace polymoe
