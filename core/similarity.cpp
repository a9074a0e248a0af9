// Layer-wise language similarity and layer scores (METHOD.md section 1), classifier layers (section 6).
//
//   sim_i(A,B) = 1/(|A||B|) * sum_{a in A} sum_{b in B} cos(a, b)     a, b: FFN inputs of layer i
//              = mean_a(a / |a|) . mean_b(b / |b|)                      (cos(a,b) = â·b̂, sums commute)
//   S_i        = ( mean over new-old pairs of sim_i + mean over new-new pairs of sim_i ) / 2
//                (no new-new pair, a single new language: S_i is the new-old mean; a Decision)
//
// So a language needs one running sum of unit vectors per layer: O(N d) time and O(d) memory, the
// same number as the N x N cosine matrix of the reference code. The K layers with the highest S_i
// get the old/new classifier of section 6 (K a setting, default 30% of the MoE layers).
#include "similarity.h"

#include "polymoe/error.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

namespace polymoe {

namespace {

std::string shapeOf(const at::Tensor &t)
{
    std::ostringstream s;
    s << '[';
    for (int64_t i = 0; i < t.dim(); ++i)
        s << (i ? ", " : "") << t.size(i);
    s << ']';
    return s.str();
}

} // namespace

SimilarityAccumulator::SimilarityAccumulator(int numLayers, int64_t dModel, std::vector<std::string> languages)
    : m_numLayers(numLayers), m_dModel(dModel), m_languages(std::move(languages))
{
    if (numLayers < 1)
        throw ConfigError("similarity: " + std::to_string(numLayers) + " layers; need at least 1");
    if (dModel < 1)
        throw ConfigError("similarity: d_model " + std::to_string(dModel) + "; need at least 1");
    if (m_languages.empty())
        throw ConfigError("similarity: no language given");
    const auto numLanguages = static_cast<int64_t>(m_languages.size());
    m_sums = at::zeros({numLayers, numLanguages, dModel}, at::TensorOptions().dtype(at::kDouble));
    m_tokens.assign(static_cast<size_t>(numLayers) * m_languages.size(), 0);
}

SimilarityAccumulator::SimilarityAccumulator(const SimilarityAccumulator &other)
    : m_numLayers(other.m_numLayers), m_dModel(other.m_dModel), m_languages(other.m_languages),
      m_sums(other.m_sums.clone()), m_tokens(other.m_tokens)
{
}

SimilarityAccumulator &SimilarityAccumulator::operator=(const SimilarityAccumulator &other)
{
    if (this != &other) {
        m_numLayers = other.m_numLayers;
        m_dModel = other.m_dModel;
        m_languages = other.m_languages;
        m_sums = other.m_sums.clone();
        m_tokens = other.m_tokens;
    }
    return *this;
}

void SimilarityAccumulator::checkIndex(const char *what, int layer, int language) const
{
    if (layer < 0 || layer >= m_numLayers)
        throw ConfigError(std::string("similarity: ") + what + ": layer " + std::to_string(layer) +
                          " out of range [0, " + std::to_string(m_numLayers) + ")");
    if (language < 0 || language >= static_cast<int>(m_languages.size()))
        throw ConfigError(std::string("similarity: ") + what + ": language index " + std::to_string(language) +
                          " out of range [0, " + std::to_string(m_languages.size()) + ")");
}

void SimilarityAccumulator::add(int layer, int language, const at::Tensor &h, const at::Tensor &mask)
{
    checkIndex("add", layer, language);
    const std::string where = "similarity: add (layer " + std::to_string(layer) + ", language '" +
                              m_languages[static_cast<size_t>(language)] + "')";
    if (!h.defined() || (h.dim() != 2 && h.dim() != 3) || h.size(-1) != m_dModel)
        throw ConfigError(where + ": h has shape " + (h.defined() ? shapeOf(h) : std::string("(undefined)")) +
                          "; expected (N, " + std::to_string(m_dModel) + ") or (B, T, " +
                          std::to_string(m_dModel) + ")");
    if (!at::isFloatingType(h.scalar_type()))
        throw ConfigError(where + ": h must be floating point");
    if (mask.defined()) {
        if (mask.scalar_type() != at::kBool)
            throw ConfigError(where + ": mask must be a bool tensor");
        if (mask.sizes() != h.sizes().slice(0, static_cast<size_t>(h.dim() - 1)))
            throw ConfigError(where + ": mask has shape " + shapeOf(mask) + ", h has shape " + shapeOf(h) +
                              "; the mask must match h without its last dimension");
    }

    // The sums live where the first tokens came from (a GPU run keeps them on the GPU).
    if (h.device() != m_sums.device()) {
        const bool empty = std::all_of(m_tokens.begin(), m_tokens.end(), [](int64_t n) { return n == 0; });
        if (empty)
            m_sums = m_sums.to(h.device());
    }

    // x (N, d) in double; unit = x / max(|x|, 1e-12), the unit vectors â of section 1.
    at::Tensor x = h.detach().reshape({-1, m_dModel}).to(m_sums.device(), at::kDouble);
    at::Tensor unit = x / x.pow(2).sum(1, /*keepdim=*/true).sqrt().clamp_min(1e-12);
    int64_t count = x.size(0);
    if (mask.defined()) {
        // Masked-out tokens are multiplied by 0, so they add nothing; (N, 1) weights.
        at::Tensor keep = mask.reshape({-1}).to(m_sums.device());
        unit = unit * keep.to(at::kDouble).unsqueeze(1);
        count = keep.sum().item<int64_t>();
    }
    // m_sums[layer, language] (d,) += sum over tokens of â.
    m_sums.select(0, layer).select(0, language).add_(unit.sum(0));
    m_tokens[static_cast<size_t>(layer) * m_languages.size() + static_cast<size_t>(language)] += count;
}

int64_t SimilarityAccumulator::tokens(int layer, int language) const
{
    checkIndex("tokens", layer, language);
    return m_tokens[static_cast<size_t>(layer) * m_languages.size() + static_cast<size_t>(language)];
}

double SimilarityAccumulator::similarity(int layer, int a, int b) const
{
    checkIndex("similarity", layer, a);
    checkIndex("similarity", layer, b);
    for (int l : {a, b}) {
        if (tokens(layer, l) == 0)
            throw ConfigError("similarity: layer " + std::to_string(layer) + ", language '" +
                              m_languages[static_cast<size_t>(l)] + "' has no tokens");
    }
    // sim(A, B) = (sum â) · (sum b̂) / (|A| |B|) = mean(â) · mean(b̂)  (section 1).
    const at::Tensor sums = m_sums.select(0, layer);
    const double dot = at::dot(sums.select(0, a), sums.select(0, b)).item<double>();
    return dot / (static_cast<double>(tokens(layer, a)) * static_cast<double>(tokens(layer, b)));
}

LayerScores layerScores(const SimilarityAccumulator &acc, const std::vector<bool> &isNew)
{
    const auto &languages = acc.languages();
    const int numLanguages = static_cast<int>(languages.size());
    if (isNew.size() != languages.size())
        throw ConfigError("layer scores: " + std::to_string(isNew.size()) + " old/new flags for " +
                          std::to_string(languages.size()) + " languages");
    std::vector<int> newIdx, oldIdx;
    for (int l = 0; l < numLanguages; ++l)
        (isNew[static_cast<size_t>(l)] ? newIdx : oldIdx).push_back(l);
    if (newIdx.empty())
        throw ConfigError("layer scores: no new language; S_i compares new languages with old ones");
    if (oldIdx.empty())
        throw ConfigError("layer scores: no old language; S_i compares new languages with old ones");
    for (int layer = 0; layer < acc.numLayers(); ++layer)
        for (int l = 0; l < numLanguages; ++l)
            if (acc.tokens(layer, l) == 0)
                throw ConfigError("layer scores: layer " + std::to_string(layer) + ", language '" +
                                  languages[static_cast<size_t>(l)] + "' has no tokens");

    LayerScores out;
    const auto L = static_cast<size_t>(acc.numLayers());
    out.score.resize(L);
    out.newOld.resize(L);
    out.newNew.resize(L);
    out.pairs.assign(L, std::vector<std::vector<double>>(numLanguages, std::vector<double>(numLanguages)));
    for (int layer = 0; layer < acc.numLayers(); ++layer) {
        auto &m = out.pairs[static_cast<size_t>(layer)];
        for (int a = 0; a < numLanguages; ++a)
            for (int b = a; b < numLanguages; ++b)
                m[a][b] = m[b][a] = acc.similarity(layer, a, b);

        // Mean over the |new| x |old| pairs, each pair weighted equally (not by tokens).
        double newOld = 0.0;
        for (int n : newIdx)
            for (int o : oldIdx)
                newOld += m[n][o];
        newOld /= static_cast<double>(newIdx.size() * oldIdx.size());

        // Mean over the unordered pairs {n1, n2} of distinct new languages.
        double newNew = std::numeric_limits<double>::quiet_NaN();
        if (newIdx.size() >= 2) {
            double sum = 0.0;
            size_t count = 0;
            for (size_t i = 0; i < newIdx.size(); ++i)
                for (size_t j = i + 1; j < newIdx.size(); ++j, ++count)
                    sum += m[newIdx[i]][newIdx[j]];
            newNew = sum / static_cast<double>(count);
        }
        out.newOld[static_cast<size_t>(layer)] = newOld;
        out.newNew[static_cast<size_t>(layer)] = newNew;
        // S_i = (newOld + newNew) / 2; Decision: a single new language has no new-new pair, S_i = newOld.
        out.score[static_cast<size_t>(layer)] = std::isnan(newNew) ? newOld : (newOld + newNew) / 2.0;
    }
    return out;
}

std::vector<int> classifierLayers(const std::vector<double> &scores, const std::vector<int> &expertsPerLayer,
                                  double share)
{
    if (scores.size() != expertsPerLayer.size())
        throw ConfigError("classifier layers: " + std::to_string(scores.size()) + " scores for " +
                          std::to_string(expertsPerLayer.size()) + " layers of experts");
    if (!(share >= 0.0 && share <= 1.0))
        throw ConfigError("classifier layers: share " + std::to_string(share) + " outside [0, 1]");
    std::vector<int> moe;
    for (size_t i = 0; i < scores.size(); ++i) {
        if (expertsPerLayer[i] < 2)
            continue;
        if (std::isnan(scores[i]))
            throw ConfigError("classifier layers: layer " + std::to_string(i) + " has a NaN score");
        moe.push_back(static_cast<int>(i));
    }
    if (moe.empty() || share == 0.0)
        return {};
    // K = round(share * MoE layers), halves away from zero (Qwen1.5-1.8B: 0.3 * 24 = 7.2 -> 7), at least 1.
    auto k = static_cast<size_t>(std::max(1L, std::lround(share * static_cast<double>(moe.size()))));
    k = std::min(k, moe.size());
    // Highest score first; stable, so among equal scores the lower layer comes first.
    std::stable_sort(moe.begin(), moe.end(), [&](int a, int b) { return scores[a] > scores[b]; });
    moe.resize(k);
    std::sort(moe.begin(), moe.end());
    return moe;
}

} // namespace polymoe
