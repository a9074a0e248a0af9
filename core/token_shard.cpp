// Reading and writing token shards (see token_shard.h for the layout).
#include "token_shard.h"

#include "atomic_file.h"
#include "polymoe/error.h"

#include <cstring>
#include <fstream>

namespace polymoe {

namespace {
constexpr char kMagic[8] = {'P', 'M', 'T', 'O', 'K', 'S', 'H', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8 + 8 + 16;

template <typename T> void put(std::string &out, T v)
{
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T)); // x86-64 and aarch64 are little-endian
    out.append(b, sizeof(T));
}
template <typename T> T get(const std::string &in, size_t at)
{
    T v;
    std::memcpy(&v, in.data() + at, sizeof(T));
    return v;
}
} // namespace

void TokenShard::addDocument(const std::vector<int32_t> &ids)
{
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    offsets.push_back(tokens.size());
}

void writeTokenShard(const std::filesystem::path &path, const TokenShard &shard)
{
    if (shard.language.size() > 16)
        throw ConfigError("language code '" + shard.language + "' is longer than 16 bytes");
    if (shard.offsets.empty() || shard.offsets.back() != shard.tokens.size())
        throw ConfigError(path.string() + ": shard offsets do not end at the token count");
    std::string out;
    out.reserve(kHeaderBytes + shard.offsets.size() * 8 + shard.tokens.size() * 4);
    out.append(kMagic, 8);
    put<uint32_t>(out, kVersion);
    put<uint32_t>(out, uint32_t(shard.vocabSize));
    put<uint64_t>(out, shard.documents());
    put<uint64_t>(out, shard.tokens.size());
    char lang[16] = {};
    std::memcpy(lang, shard.language.data(), shard.language.size());
    out.append(lang, 16);
    for (uint64_t o : shard.offsets)
        put<uint64_t>(out, o);
    out.append(reinterpret_cast<const char *>(shard.tokens.data()), shard.tokens.size() * 4);
    writeFileAtomically(path, out);
}

TokenShard readTokenShard(const std::filesystem::path &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError(path.string() + ": cannot open token shard");
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string where = path.string() + ": ";
    if (data.size() < kHeaderBytes || std::memcmp(data.data(), kMagic, 8) != 0)
        throw FormatError(where + "not a PolyMoE token shard (bad magic or shorter than its header)");
    if (get<uint32_t>(data, 8) != kVersion)
        throw FormatError(where + "token shard version " + std::to_string(get<uint32_t>(data, 8)) +
                          " is not supported (expected " + std::to_string(kVersion) + ")");
    TokenShard s;
    s.vocabSize = int32_t(get<uint32_t>(data, 12));
    const uint64_t docs = get<uint64_t>(data, 16);
    const uint64_t n = get<uint64_t>(data, 24);
    s.language.assign(data.data() + 32, strnlen(data.data() + 32, 16));
    // Sizes checked by division first so that huge counts cannot overflow the sum.
    const uint64_t rest = data.size() - kHeaderBytes;
    if (docs >= rest / 8 || n > rest / 4 || (docs + 1) * 8 + n * 4 != rest)
        throw FormatError(where + "header says " + std::to_string(docs) + " documents and " + std::to_string(n) +
                          " tokens, but the file has " + std::to_string(rest) + " bytes after its header");
    s.offsets.resize(docs + 1);
    std::memcpy(s.offsets.data(), data.data() + kHeaderBytes, (docs + 1) * 8);
    if (s.offsets.front() != 0 || s.offsets.back() != n)
        throw FormatError(where + "document offsets must start at 0 and end at the token count");
    for (size_t d = 0; d < docs; ++d)
        if (s.offsets[d + 1] < s.offsets[d])
            throw FormatError(where + "document offsets decrease at document " + std::to_string(d) +
                              " (byte " + std::to_string(kHeaderBytes + (d + 1) * 8) + ")");
    s.tokens.resize(n);
    const size_t tokenStart = kHeaderBytes + (docs + 1) * 8;
    if (n > 0) // an empty shard: no tokens, and memcpy must not see its null pointer
        std::memcpy(s.tokens.data(), data.data() + tokenStart, n * 4);
    for (size_t i = 0; i < n; ++i)
        if (s.tokens[i] < 0 || s.tokens[i] >= s.vocabSize)
            throw FormatError(where + "token id " + std::to_string(s.tokens[i]) + " at byte " +
                              std::to_string(tokenStart + i * 4) + " is outside the vocabulary of " +
                              std::to_string(s.vocabSize));
    return s;
}

} // namespace polymoe
