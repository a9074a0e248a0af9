// Layer-wise language similarity (LayerMoE, METHOD.md section 1) and the choice of the classifier
// layers (section 6): running sums of unit FFN inputs per layer and language, the layer score S_i.
//
// Usage:
//   polymoe::SimilarityAccumulator acc(config.numLayers, config.hiddenSize, {"en", "es", "de", "ru"});
//   lm->setFfnInputHook([&](int layer, const at::Tensor &h) { acc.add(layer, lang, h, notPadding); });
//   ... run each language's text through the model ...
//   polymoe::LayerScores s = polymoe::layerScores(acc, {false, false, true, true});
//   std::vector<int> experts = polymoe::layerMoeAllocationForBudget(s.score, 56);   // allocation.h
//   std::vector<int> cls = polymoe::classifierLayers(s.score, experts);             // 30% of MoE layers
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace polymoe {

// Per layer and language: the sum of the unit vectors h/|h| of every token seen (double precision,
// (d_model,) each) and the token count. sim_i(A, B) = mean(â) · mean(b̂), which is exactly the mean
// cosine over all |A| x |B| token pairs (self-pairs included when A == B), in O(N d) time and O(d)
// memory per layer and language.
class SimilarityAccumulator {
public:
    SimilarityAccumulator(int numLayers, int64_t dModel, std::vector<std::string> languages);
    // Copies are deep (at::Tensor alone would share the sums between copies).
    SimilarityAccumulator(const SimilarityAccumulator &other);
    SimilarityAccumulator &operator=(const SimilarityAccumulator &other);
    SimilarityAccumulator(SimilarityAccumulator &&) = default;
    SimilarityAccumulator &operator=(SimilarityAccumulator &&) = default;

    // Adds the tokens of h, (N, d_model) or (B, T, d_model), any floating dtype and device, to
    // (layer, language). mask, when defined, is a bool tensor of h's leading shape ((N) or (B, T));
    // only tokens where it is true count (padding excluded). A token whose vector is zero adds a zero
    // "unit" vector (torch's F.normalize convention, norm clamped at 1e-12) but still counts.
    // Throws ConfigError for an index out of range or a shape that does not fit.
    void add(int layer, int language, const at::Tensor &h, const at::Tensor &mask = {});

    // Mean pairwise cosine of the tokens of languages a and b at this layer. Throws ConfigError if
    // either language has no token there.
    double similarity(int layer, int a, int b) const;

    int64_t tokens(int layer, int language) const;

    int numLayers() const { return m_numLayers; }
    int64_t dModel() const { return m_dModel; }
    const std::vector<std::string> &languages() const { return m_languages; }

private:
    void checkIndex(const char *what, int layer, int language) const;

    int m_numLayers;
    int64_t m_dModel;
    std::vector<std::string> m_languages;
    at::Tensor m_sums;               // (layers, languages, d_model) double: sum of unit vectors
    std::vector<int64_t> m_tokens;   // [layer * languages + language]: tokens added
};

// The layer scores of METHOD.md section 1 and the parts they are made of.
struct LayerScores {
    std::vector<double> score;   // S_i = (newOld + newNew) / 2, or newOld with a single new language
    std::vector<double> newOld;  // mean of sim_i over the (new, old) language pairs
    std::vector<double> newNew;  // mean of sim_i over the unordered pairs of distinct new languages; NaN if < 2 new
    std::vector<std::vector<std::vector<double>>> pairs;  // [layer][a][b] = sim_i(a, b), symmetric
};

// isNew[l] tells whether language l (the accumulator's order) is new. Throws ConfigError when there
// is no old or no new language, when isNew does not match the languages, or when a language has no
// token in some layer (named).
LayerScores layerScores(const SimilarityAccumulator &acc, const std::vector<bool> &isNew);

// The layers that get the old/new classifier (METHOD.md section 6): among the MoE layers
// (expertsPerLayer[i] >= 2), the round(share * count) ones with the highest score (at least 1 when
// share > 0 and there is a MoE layer; equal scores: the lower layer wins), sorted ascending.
// Throws ConfigError for mismatched sizes, share outside [0, 1] or a NaN score.
std::vector<int> classifierLayers(const std::vector<double> &scores, const std::vector<int> &expertsPerLayer,
                                  double share = 0.3);

} // namespace polymoe
