// Deterministic packing and mixing of token streams into training batches.
#include "sequence_batcher.h"

#include "content_hash.h"
#include "polymoe/error.h"

#include <algorithm>
#include <numeric>

namespace polymoe {

namespace {
uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
double uniform(uint64_t a, uint64_t b, uint64_t c)
{
    return double(mix(mix(mix(a) ^ b) ^ (c * 0x9e3779b97f4a7c15ull)) >> 11) / double(uint64_t(1) << 53);
}
} // namespace

LanguageStream makeStream(const TokenShard &shard, bool isNew, double weight, int32_t bos, int32_t eos)
{
    LanguageStream s;
    s.language = shard.language;
    s.isNew = isNew;
    s.weight = weight;
    s.bos = bos;
    s.tokens.reserve(shard.tokens.size() + 2 * shard.documents());
    for (size_t d = 0; d < shard.documents(); ++d) {
        if (bos >= 0)
            s.tokens.push_back(bos);
        s.tokens.insert(s.tokens.end(), shard.tokens.begin() + long(shard.offsets[d]),
                        shard.tokens.begin() + long(shard.offsets[d + 1]));
        if (eos >= 0)
            s.tokens.push_back(eos);
        s.documentEnds.push_back(int64_t(s.tokens.size()));
    }
    return s;
}

SequenceBatcher::SequenceBatcher(std::vector<LanguageStream> streams, int64_t seqLen, uint64_t seed)
    : m_streams(std::move(streams)), m_seqLen(seqLen), m_seed(seed)
{
    if (seqLen < 2)
        throw ConfigError("sequence length must be at least 2");
    double total = 0;
    for (size_t i = 0; i < m_streams.size(); ++i) {
        const auto &s = m_streams[i];
        if (s.weight < 0)
            throw ConfigError("language '" + s.language + "' has a negative sampling weight");
        if (s.weight > 0 && chunksOf(i) == 0)
            throw ConfigError("language '" + s.language + "' has " + std::to_string(s.tokens.size()) +
                              " training tokens, fewer than one sequence of " + std::to_string(seqLen + 1));
        total += s.weight;
        m_cumulative.push_back(total);
    }
    if (total <= 0)
        throw ConfigError("no language to train on (every sampling weight is zero)");
    for (auto &c : m_cumulative)
        c /= total;
}

int64_t SequenceBatcher::chunksOf(size_t stream) const
{
    const auto n = int64_t(m_streams[stream].tokens.size());
    return n > m_seqLen ? (n - 1) / m_seqLen : 0;
}

int SequenceBatcher::chooseLanguage(uint64_t step, uint64_t row) const
{
    const double u = uniform(m_seed, step, row);
    for (size_t i = 0; i < m_cumulative.size(); ++i)
        if (u < m_cumulative[i] && m_streams[i].weight > 0)
            return int(i);
    for (size_t i = m_streams.size(); i-- > 0;)
        if (m_streams[i].weight > 0)
            return int(i);
    return 0;
}

// The cursor-th sequence drawn from a stream: epochs walk a fresh permutation of its chunks. The
// permutation is a multiplicative bijection on [0, n), cheap to evaluate for any cursor.
int64_t SequenceBatcher::chunkIndex(size_t stream, int64_t cursor) const
{
    const int64_t n = chunksOf(stream);
    const uint64_t epoch = uint64_t(cursor / n);
    const int64_t i = cursor % n;
    const uint64_t key = mix(m_seed ^ fnv1a64(m_streams[stream].language) ^ mix(epoch + 1));
    // Pick a multiplier coprime with n, and an offset.
    int64_t a = int64_t(key % uint64_t(n)) | 1;
    while (std::gcd(a, n) != 1)
        a += 2;
    const int64_t b = int64_t((key >> 32) % uint64_t(n));
    return int64_t((__int128(a) * i + b) % n);
}

SequenceBatch SequenceBatcher::batch(int64_t step, int64_t rows) const
{
    // Cursors before this step come from replaying the language choices of the earlier steps: the
    // same function of step and row, so resume needs nothing but the step number.
    std::vector<int64_t> cursor(m_streams.size(), 0);
    for (int64_t s = 0; s < step; ++s)
        for (int64_t r = 0; r < rows; ++r)
            ++cursor[size_t(chooseLanguage(uint64_t(s), uint64_t(r)))];
    SequenceBatch b;
    b.rows = rows;
    b.seqLen = m_seqLen;
    b.tokens.resize(size_t(rows * (m_seqLen + 1)));
    for (int64_t r = 0; r < rows; ++r) {
        const int lang = chooseLanguage(uint64_t(step), uint64_t(r));
        const auto &s = m_streams[size_t(lang)];
        const int64_t chunk = chunkIndex(size_t(lang), cursor[size_t(lang)]++);
        const auto *src = s.tokens.data() + chunk * m_seqLen;
        std::copy(src, src + m_seqLen + 1, b.tokens.begin() + r * (m_seqLen + 1));
        b.language.push_back(lang);
        b.isNew.push_back(s.isNew);
    }
    return b;
}

int64_t targetDocument(const LanguageStream &stream, int64_t pos)
{
    const auto &ends = stream.documentEnds;
    const auto d = int64_t(std::upper_bound(ends.begin(), ends.end(), pos) - ends.begin());
    if (ends.empty())
        return pos == 0 && stream.bos >= 0 && !stream.tokens.empty() && stream.tokens[0] == stream.bos ? -1 : 0;
    if (d >= int64_t(ends.size()))
        return int64_t(ends.size()) - 1; // past the last end (a malformed stream): the last document
    const int64_t start = d == 0 ? 0 : ends[size_t(d - 1)];
    if (pos == start && stream.bos >= 0 && pos < int64_t(stream.tokens.size()) && stream.tokens[size_t(pos)] == stream.bos)
        return -1;
    return d;
}

std::vector<std::vector<int64_t>> evaluationSequences(const LanguageStream &stream, int64_t seqLen,
                                                      int64_t maxTokens)
{
    std::vector<std::vector<int64_t>> out;
    const auto n = int64_t(stream.tokens.size());
    int64_t targets = 0;
    for (int64_t start = 0; start + seqLen + 1 <= n; start += seqLen) {
        if (maxTokens > 0 && targets >= maxTokens)
            break;
        out.emplace_back(stream.tokens.begin() + start, stream.tokens.begin() + start + seqLen + 1);
        targets += seqLen;
    }
    // A short held-out set still counts: one final partial sequence.
    if (out.empty() && n >= 2)
        out.emplace_back(stream.tokens.begin(), stream.tokens.end());
    return out;
}

} // namespace polymoe
