// Packs token shards into fixed-length training sequences, mixing languages by weight,
// deterministically from a seed: the batch of step s depends only on (shards, weights, seed, s),
// so a resumed run sees exactly the data the uninterrupted one would have.
#pragma once

#include "token_shard.h"

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe {

struct LanguageStream {
    std::string language;
    bool isNew = false;          // group: new (true) or old
    double weight = 1;           // relative sampling weight; 0 = never sampled
    std::vector<int32_t> tokens{}; // documents concatenated, each as BOS doc EOS
    std::vector<int64_t> documentEnds{}; // where each document ends in tokens (exclusive), ascending
    int32_t bos = -1;            // the token each document starts with (given, never predicted); -1 = none
    // Each document's size as text, in characters and UTF-8 bytes (empty: unknown); for bits per
    // character in evaluations.
    std::vector<int64_t> documentCharacters{}, documentBytes{};
};

// The document a target at stream position `pos` (>= 1) is scored in, or -1 when it is not scored:
// a document's leading BOS is given to the model, never predicted, so it is no target (METHOD.md
// section 8 scores the text). A stream without document ends is one document.
int64_t targetDocument(const LanguageStream &stream, int64_t pos);

// Builds a language's stream from a shard; bos/eos < 0 are left out.
LanguageStream makeStream(const TokenShard &shard, bool isNew, double weight, int32_t bos, int32_t eos);

struct SequenceBatch {
    int64_t rows = 0, seqLen = 0;
    std::vector<int64_t> tokens;   // rows x (seqLen + 1): inputs are [:, :-1], targets [:, 1:]
    std::vector<int> language;     // index into the batcher's streams, per row
    std::vector<uint8_t> isNew;    // group per row
};

class SequenceBatcher {
public:
    SequenceBatcher(std::vector<LanguageStream> streams, int64_t seqLen, uint64_t seed);

    SequenceBatch batch(int64_t step, int64_t rows) const;
    const std::vector<LanguageStream> &streams() const { return m_streams; }
    int64_t chunksOf(size_t stream) const; // sequences a stream holds

private:
    int chooseLanguage(uint64_t step, uint64_t row) const;
    int64_t chunkIndex(size_t stream, int64_t cursor) const;

    std::vector<LanguageStream> m_streams;
    std::vector<double> m_cumulative;
    int64_t m_seqLen;
    uint64_t m_seed;
};

// Consecutive non-overlapping sequences of a held-out stream, up to maxTokens targets (0 = all).
std::vector<std::vector<int64_t>> evaluationSequences(const LanguageStream &stream, int64_t seqLen,
                                                      int64_t maxTokens);

} // namespace polymoe
