// Section 1's sample: seeded documents across the corpus, special tokens out (see similarity_sample.h).
#include "similarity_sample.h"

#include "polymoe/error.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace polymoe {

SimilaritySample similaritySample(const std::vector<const LanguageStream *> &parts, int32_t eos, int64_t budget,
                                  int64_t seqLen, uint64_t seed)
{
    if (budget < 1 || seqLen < 1)
        throw ConfigError("similarity sample: the token budget and the window length must be positive");
    struct Doc {
        int part;
        int64_t index, begin, end;
    };
    std::vector<Doc> docs;
    for (size_t p = 0; p < parts.size(); ++p) {
        const LanguageStream &s = *parts[p];
        std::vector<int64_t> ends = s.documentEnds;
        if (ends.empty() && !s.tokens.empty())
            ends.push_back(int64_t(s.tokens.size()));
        int64_t begin = 0;
        for (size_t d = 0; d < ends.size(); ++d) {
            docs.push_back({int(p), int64_t(d), begin, std::min<int64_t>(ends[d], int64_t(s.tokens.size()))});
            begin = ends[d];
        }
    }
    // A seeded shuffle: the same corpus and seed draw the same documents, whatever the budget.
    std::mt19937_64 rng(seed);
    std::shuffle(docs.begin(), docs.end(), rng);

    SimilaritySample out;
    out.documents.resize(parts.size());
    for (const Doc &d : docs) {
        if (out.tokens >= budget)
            break;
        const LanguageStream &s = *parts[size_t(d.part)];
        const bool hasBos = s.bos >= 0 && d.end > d.begin && s.tokens[size_t(d.begin)] == s.bos;
        int64_t textBegin = d.begin + (hasBos ? 1 : 0), textEnd = d.end;
        if (eos >= 0 && textEnd > textBegin && s.tokens[size_t(textEnd - 1)] == eos)
            --textEnd;
        if (textEnd <= textBegin)
            continue; // no text: nothing to count
        textEnd = std::min(textEnd, textBegin + (budget - out.tokens));
        out.documents[size_t(d.part)].push_back(d.index);
        out.tokens += textEnd - textBegin;
        // Windows of seqLen ids: the first one starts with the BOS (not counted), the rest are text.
        for (int64_t at = textBegin; at < textEnd;) {
            SimilarityWindow w;
            w.part = d.part;
            w.document = d.index;
            if (at == textBegin && hasBos && seqLen >= 2) {
                w.ids.push_back(s.bos);
                w.firstCounted = 1;
            }
            const int64_t take = std::min(textEnd - at, seqLen - int64_t(w.ids.size()));
            w.ids.insert(w.ids.end(), s.tokens.begin() + at, s.tokens.begin() + at + take);
            at += take;
            out.windows.push_back(std::move(w));
        }
    }
    return out;
}

} // namespace polymoe
