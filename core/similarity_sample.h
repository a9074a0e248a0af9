// The text whose hidden states the layer similarity compares (METHOD.md section 1): documents drawn
// across a language's whole corpus with a seed, cut into model windows, special tokens left out.
#pragma once

#include "sequence_batcher.h"

#include <cstdint>
#include <vector>

namespace polymoe {

// One forward's worth of a sampled document: ids as the model reads them (a document's leading BOS
// kept, so the text is seen as in training) and the positions whose FFN inputs count.
struct SimilarityWindow {
    std::vector<int64_t> ids;
    int64_t firstCounted = 0; // ids[firstCounted..] count; 1 when ids[0] is the document's BOS
    int part = 0;             // index of the stream (split) it came from
    int64_t document = 0;     // document index within that stream
};

struct SimilaritySample {
    std::vector<SimilarityWindow> windows;
    int64_t tokens = 0;                              // counted tokens, = min(budget, text available)
    std::vector<std::vector<int64_t>> documents;     // per part: the documents drawn, in draw order
};

// Draws documents without replacement from all `parts` (a language's splits) together, in an order
// that depends only on `seed` and the documents' count, until `budget` text tokens are counted; the
// last document drawn is cut to fit. Each document's text is its tokens without a leading BOS or a
// trailing EOS (LanguageStream::bos, `eos` < 0: none); windows hold at most seqLen ids. A stream
// without document ends is one document. Throws ConfigError for budget or seqLen < 1.
SimilaritySample similaritySample(const std::vector<const LanguageStream *> &parts, int32_t eos, int64_t budget,
                                  int64_t seqLen, uint64_t seed);

} // namespace polymoe
