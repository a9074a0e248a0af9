// For the fuzz targets whose reader takes a path: the input written to one scratch file per process.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace polymoe::fuzz {

// Writes the bytes to "<tmp>/polymoe-fuzz-<pid>/input<suffix>" and returns that path.
inline std::filesystem::path inputFile(const uint8_t *data, size_t size, const std::string &suffix)
{
    static const std::filesystem::path dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("polymoe-fuzz-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    const auto path = dir / ("input" + suffix);
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator(dir, ec))
        std::filesystem::remove_all(e.path(), ec); // SQLite's -wal and -shm files of the last input
    if (FILE *f = std::fopen(path.c_str(), "wb")) {
        if (size)
            std::fwrite(data, 1, size, f);
        std::fclose(f);
    }
    return path;
}

} // namespace polymoe::fuzz
