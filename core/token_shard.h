// Binary token shards: one language and split, documents kept apart by an offsets table.
//
// Layout (little-endian): "PMTOKSH1" | u32 version (1) | u32 vocab size | u64 documents D |
// u64 tokens N | char[16] language (NUL-padded) | u64 offsets[D + 1] (offsets[0] = 0,
// offsets[D] = N) | i32 tokens[N]. Written to a temporary file and renamed into place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace polymoe {

struct TokenShard {
    std::string language;
    int32_t vocabSize = 0;
    std::vector<uint64_t> offsets{0}; // document d is tokens[offsets[d], offsets[d + 1])
    std::vector<int32_t> tokens;

    size_t documents() const { return offsets.size() - 1; }
    void addDocument(const std::vector<int32_t> &ids);
};

void writeTokenShard(const std::filesystem::path &path, const TokenShard &shard);
// Validates the header, the offsets (monotonic, ending at N) and every id (< vocab size); throws
// FormatError naming the file and the byte offset of the problem.
TokenShard readTokenShard(const std::filesystem::path &path);

} // namespace polymoe
