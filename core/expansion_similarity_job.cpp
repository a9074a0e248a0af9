// The similarity job (METHOD.md section 1, LayerMoE) on a project model, recorded in the store:
//
//   sim_i(A,B) = 1/(|A||B|) * sum_{a in A} sum_{b in B} cos(a, b)   over the FFN inputs h of layer i
//   S_i = ( mean over new-old pairs of sim_i + mean over new-new pairs of sim_i ) / 2
//
// Each language's sample is its text run through the model, token by token, no pooling; the sums
// themselves are in similarity.cpp, the sample's draw in similarity_sample.cpp.
#include "expansion_stage.h"

#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "project_models.h"
#include "similarity.h"
#include "similarity_sample.h"

#include <torch/utils.h>

#include <algorithm>
#include <cmath>

namespace polymoe {

using namespace detail;

namespace {

constexpr size_t kWindowsPerBatch = 16;

// Runs a language's windows through the model in batches, right-padded; padding and BOS positions
// are masked out through countMask, which the FFN-input hook reads (the attention is causal, so
// padding after a window's end changes nothing before it).
void feedSample(CausalLM &model, const SimilaritySample &sample, const c10::Device &device, at::Tensor &countMask,
                std::stop_token stop)
{
    for (size_t b = 0; b < sample.windows.size(); b += kWindowsPerBatch) {
        throwIfStopped(stop);
        const size_t e = std::min(sample.windows.size(), b + kWindowsPerBatch);
        int64_t width = 0;
        for (size_t k = b; k < e; ++k)
            width = std::max<int64_t>(width, int64_t(sample.windows[k].ids.size()));
        const int64_t rows = int64_t(e - b);
        std::vector<int64_t> ids(size_t(rows * width), 0);   // (rows, width), 0-padded
        std::vector<uint8_t> mask(size_t(rows * width), 0);  // (rows, width), 1 = the position counts
        for (size_t k = b; k < e; ++k) {
            const auto &w = sample.windows[k];
            const int64_t r = int64_t(k - b);
            std::copy(w.ids.begin(), w.ids.end(), ids.begin() + r * width);
            for (int64_t t = w.firstCounted; t < int64_t(w.ids.size()); ++t)
                mask[size_t(r * width + t)] = 1;
        }
        countMask = torch::from_blob(mask.data(), {rows, width}, at::kByte).to(at::kBool).clone();
        model->forward(torch::from_blob(ids.data(), {rows, width}, at::kLong).clone().to(device));
    }
}

// The analysis's rows: its settings (wave, sample), sim_i of every language pair (a <= b) and S_i.
int64_t recordAnalysis(ProjectStore &store, const SimilarityAnalysis &out, int L, const std::string &modelName,
                       int64_t tokensPerLanguage, const WavePlan &plan, const nlohmann::json &counts,
                       const nlohmann::json &samples, int64_t seqLen, uint64_t seed)
{
    SimilarityAnalysisRecord a;
    a.modelId = out.modelId;
    a.tokensPerLanguage = tokensPerLanguage;
    a.settings = nlohmann::json{{"model", modelName}, {"wave", plan.wave}, {"old", plan.old}, {"new", plan.fresh},
                                {"tokens", counts}, {"seq_len", seqLen},
                                {"sample", {{"seed", seed}, {"documents", samples},
                                            {"rule", "seeded documents of both splits, BOS/EOS not counted"}}}}
                     .dump();
    std::vector<SimilarityValueRecord> values;
    for (int l = 0; l < L; ++l)
        for (size_t i = 0; i < out.languages.size(); ++i)
            for (size_t j = i; j < out.languages.size(); ++j)
                values.push_back({l, out.languages[i], out.languages[j], out.pairs[size_t(l)][i][j]});
    std::vector<LayerScoreRecord> layerRows;
    for (int l = 0; l < L; ++l) {
        LayerScoreRecord r;
        r.layer = l;
        r.score = out.score[size_t(l)];
        r.newOld = out.newOld[size_t(l)];
        if (std::isfinite(out.newNew[size_t(l)])) // NaN with a single new language: no new-new pair
            r.newNew = out.newNew[size_t(l)];
        layerRows.push_back(r);
    }
    return store.addSimilarityAnalysis(a, values, layerRows);
}

} // namespace

SimilarityAnalysis analyzeSimilarity(ProjectStore &store, const std::string &modelName, int64_t tokensPerLanguage,
                                     const ProgressFn &progress, std::stop_token stop, uint64_t seed)
{
    if (tokensPerLanguage < 1)
        throw ConfigError("similarity: tokens per language must be positive");
    const ModelRecord rec = requireModel(store, modelName);
    CausalLM model = loadModelFolder(store.modelPath(rec));
    setTrainingThreads(0);
    // Section 7: on an expanded model the similarity is measured on the MoE input, with the earlier
    // waves' languages old.
    const bool expanded = !moeLayoutOf(*model).empty();
    const WavePlan plan = wavePlan(store, std::nullopt, expanded);

    SimilarityAnalysis out;
    out.modelId = rec.id;
    for (const auto &c : plan.old)
        out.languages.push_back(c), out.isNew.push_back(false);
    for (const auto &c : plan.fresh)
        out.languages.push_back(c), out.isNew.push_back(true);

    // Section 1: documents drawn with a seed across the language's whole corpus (both splits, every
    // source), BOS and EOS not counted (similarity_sample.h).
    const auto heldout = projectStreams(store, "heldout");
    const auto train = projectStreams(store, "train");
    const int32_t eos = projectDocumentTokens(store).eos;
    const int64_t seqLen = std::min<int64_t>(128, model->config().maxPositionEmbeddings);
    const int L = int(model->numLayers());
    // Running sums of unit vectors per language and layer: mean(â) · mean(b̂) is the mean cosine over
    // all token pairs, in O(N·d) instead of the N×N matrix.
    SimilarityAccumulator acc(L, model->config().hiddenSize, out.languages);
    int current = 0;
    at::Tensor countMask; // (B, T) bool: which positions of the batch count
    model->setFfnInputHook([&](int layer, const at::Tensor &h) { acc.add(layer, current, h, countMask.to(h.device())); });
    struct HookReset {
        CausalLM &m;
        ~HookReset() { m->setFfnInputHook({}); }
    } hookReset{model};

    nlohmann::json samples = nlohmann::json::object(), counts = nlohmann::json::object();
    const at::NoGradGuard noGrad;
    model->eval();
    const auto device = model->parameters().front().device();
    for (size_t li = 0; li < out.languages.size(); ++li) {
        const std::string &code = out.languages[li];
        std::vector<const LanguageStream *> parts;
        const char *partNames[2] = {"heldout", "train"};
        parts.push_back(findStream(heldout, code));
        parts.push_back(findStream(train, code));
        const LanguageStream empty;
        for (auto &p : parts)
            if (!p)
                p = &empty;
        const SimilaritySample sample = similaritySample(parts, eos, tokensPerLanguage, seqLen, seed);
        if (sample.tokens == 0)
            throw ConfigError(store.path().string() + ": language '" + code + "' has no text to analyse");
        current = int(li);
        feedSample(model, sample, device, countMask, stop);
        const int64_t n = sample.tokens;
        nlohmann::json drawn = nlohmann::json::object();
        for (size_t p = 0; p < parts.size(); ++p)
            drawn[partNames[p]] = sample.documents[p];
        samples[code] = drawn;
        out.tokens.push_back(n);
        counts[code] = n;
        if (progress)
            progress({"similarity", int64_t(li + 1), int64_t(out.languages.size()), "languages", code});
    }

    const LayerScores scores = layerScores(acc, out.isNew);
    out.score = scores.score;
    out.newOld = scores.newOld;
    out.newNew = scores.newNew;
    out.pairs = scores.pairs;
    out.id = recordAnalysis(store, out, L, modelName, tokensPerLanguage, plan, counts, samples, seqLen, seed);
    return out;
}

} // namespace polymoe
