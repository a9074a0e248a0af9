// Content hashes: SHA-256 for provenance of source files and documents, FNV-1a 64 for the
// deterministic train/held-out split and duplicate detection.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace polymoe {

class Sha256 {
public:
    Sha256();
    void update(const void *data, size_t size);
    void update(std::string_view s) { update(s.data(), s.size()); }
    std::string hexDigest(); // finalises; 64 lowercase hex characters

private:
    void block(const uint8_t *p);
    uint32_t m_h[8];
    uint8_t m_buf[64];
    uint64_t m_len = 0;
    size_t m_fill = 0;
};

std::string sha256Hex(std::string_view data);
std::string sha256File(const std::filesystem::path &path); // throws IoError

constexpr uint64_t fnv1a64(std::string_view s, uint64_t h = 0xcbf29ce484222325ull)
{
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

// A well-mixed 64-bit value of a document's text and a seed (splitmix64 over FNV-1a).
uint64_t documentKey(std::string_view text, uint64_t seed);

} // namespace polymoe
