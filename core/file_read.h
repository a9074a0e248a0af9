// Reading a file named by a user or a project: regular files only (a FIFO or a device is refused
// without blocking on it), with a size limit, in one read of what is there.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace polymoe {

// The whole content of `path`. Throws IoError naming the file when it is missing, not a regular
// file (checked on the opened descriptor, so a FIFO never blocks), larger than maxBytes, or unreadable.
std::string readRegularFile(const std::filesystem::path &path, int64_t maxBytes = int64_t(1) << 30);

} // namespace polymoe
