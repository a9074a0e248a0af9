// A small project for the GUI tests, written straight through the ProjectStore API (no training):
// four languages with documents, three models with held-out evaluations, a similarity analysis, an
// allocation, runs with loss series and router statistics. Every number is a constant here, so the
// tests compare what the views show with what was inserted.
#pragma once

#include "polymoe/corpus.h"
#include "polymoe/project_store.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace fixture {

using namespace polymoe;

inline const std::vector<Language> kLanguages = {
    {"en", "English", LanguageGroup::Old, 0},
    {"es", "Spanish", LanguageGroup::Old, 0},
    {"de", "German", LanguageGroup::New, 1},
    {"ru", "Russian", LanguageGroup::New, 1},
};
inline const std::map<std::string, int> kDocuments = {{"en", 12}, {"es", 9}, {"de", 7}, {"ru", 5}};
constexpr int kLayers = 4;
constexpr int64_t kDModel = 64, kDFfn = 128;
// S_i per layer; with the allocation below the MoE layers are 1, 2, 3 and the classifier (30% of 3
// layers, rounded: 1) is layer 2, the most similar one.
inline const std::vector<double> kScores = {0.010, 0.030, 0.050, 0.040};
inline const std::vector<double> kNewOld = {0.008, 0.025, 0.045, 0.035};
inline const std::vector<double> kNewNew = {0.012, 0.035, 0.055, 0.045};
inline const std::vector<int> kAllocation = {1, 3, 2, 2};
// Held-out perplexity per model and language.
inline const std::map<std::string, std::map<std::string, double>> kPerplexity = {
    {"base", {{"en", 63.5}, {"es", 61.3}, {"de", 311.6}, {"ru", 201.7}}},
    {"stage1", {{"en", 87.9}, {"es", 127.6}, {"de", 136.9}, {"ru", 109.5}}},
    {"stage2", {{"en", 65.1}, {"es", 63.2}, {"de", 152.6}, {"ru", 121.4}}},
};
// The base's 95% interval, as factors of its perplexity (recorded for the base only).
inline constexpr double kIntervalLow = 0.9, kIntervalHigh = 1.125;
// sim_i(a, b) = layer score + a small pair-specific offset.
inline double pairValue(int layer, const std::string &a, const std::string &b)
{
    return kScores[size_t(layer)] + 0.001 * double((a[0] - 'a') % 7 + (b[0] - 'a') % 5);
}

struct Ids {
    int64_t pretrainRun = 0, stage1Run = 0, stage2Run = 0;
    int64_t analysis = 0, allocation = 0;
    std::map<std::string, int64_t> models;
};

// Router statistics of the stage-2 run at `step`: expert-0 top-1 share rises with the step for old languages.
inline std::vector<RouterStatRecord> routerRows(int64_t runId, int64_t step)
{
    std::vector<RouterStatRecord> rows;
    for (int layer = 0; layer < kLayers; ++layer) {
        const int n = kAllocation[size_t(layer)];
        if (n < 2)
            continue;
        for (const auto &l : kLanguages) {
            const bool old = l.group == LanguageGroup::Old;
            const double top0 = old ? 0.5 + 0.02 * double(step) / 10.0 + 0.05 * layer : 0.3;
            for (int e = 0; e < n; ++e) {
                RouterStatRecord r;
                r.runId = runId;
                r.step = step;
                r.layer = layer;
                r.language = l.code;
                r.expert = e;
                r.top1Share = e == 0 ? top0 : (1 - top0) / (n - 1);
                r.slotShare = e == 0 ? top0 * 0.9 : (1 - top0 * 0.9) / (n - 1);
                r.entropy = 0.5 + 0.1 * layer;
                rows.push_back(r);
            }
        }
    }
    return rows;
}

inline std::string modelConfig(bool moe)
{
    std::string c = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, "
                    "\"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"vocab_size\": 64";
    if (moe)
        c += ", \"polymoe\": {\"experts_per_layer\": [1, 3, 2, 2], \"top_k\": 2}";
    return c + "}";
}

inline Ids build(ProjectStore &store)
{
    Ids ids;
    for (const auto &l : kLanguages) {
        std::vector<RawDocument> docs;
        for (int d = 0; d < kDocuments.at(l.code); ++d)
            docs.push_back({l.code + " document number " + std::to_string(d) + " with a few words", l.code + ":" + std::to_string(d)});
        CorpusSource src{"fixture-" + l.code, "fixture", "00", "tst fixture", "txt"};
        CorpusImportOptions o;
        o.heldoutFraction = 0.2;
        importDocuments(store, l, {{src, docs}}, o);
    }
    int64_t parent = 0;
    for (const char *name : {"base", "stage1", "stage2"}) {
        ModelRecord m;
        m.name = name;
        m.kind = std::string(name) == "base" ? "base" : "expanded";
        m.path = std::string("models/") + name;
        m.config = modelConfig(m.kind == "expanded");
        if (parent)
            m.parentId = parent;
        m.parameters = 100000;
        parent = ids.models[name] = store.addModel(m);
        std::vector<EvaluationRecord> ev;
        for (const auto &[lang, ppl] : kPerplexity.at(name)) {
            ev.push_back({parent, std::nullopt, lang, "heldout", 4096, std::log(ppl), ppl, ""});
            if (m.kind == "base") { // the base's document-bootstrap interval; none recorded for the others
                ev.back().documents = 20;
                ev.back().perplexityLow = ppl * kIntervalLow;
                ev.back().perplexityHigh = ppl * kIntervalHigh;
            }
        }
        store.addEvaluations(ev);
    }
    SimilarityAnalysisRecord a;
    a.modelId = ids.models["base"];
    a.tokensPerLanguage = 5000;
    a.settings = "{}";
    std::vector<SimilarityValueRecord> values;
    std::vector<LayerScoreRecord> scores;
    for (int layer = 0; layer < kLayers; ++layer) {
        for (const auto &x : kLanguages)
            for (const auto &y : kLanguages)
                values.push_back({layer, x.code, y.code, x.code == y.code ? 0.2 : pairValue(layer, std::min(x.code, y.code), std::max(x.code, y.code))});
        scores.push_back({layer, kScores[size_t(layer)], kNewOld[size_t(layer)], kNewNew[size_t(layer)]});
    }
    ids.analysis = store.addSimilarityAnalysis(a, values, scores);
    AllocationRecord al;
    al.name = "manual-4";
    al.strategy = "manual";
    al.experts = kAllocation;
    al.analysisId = ids.analysis;
    ids.allocation = store.addAllocation(al);

    ids.pretrainRun = store.beginRun("pretrain", "{}");
    for (int s = 10; s <= 50; s += 10)
        store.addMetrics(ids.pretrainRun, s, {{"loss", 5.0 - 0.05 * s}, {"lr", 1e-3}});
    store.finishRun(ids.pretrainRun, "completed", {}, ids.models["base"]);
    ids.stage1Run = store.beginRun("stage1", "{}", ids.models["base"]);
    for (int s = 10; s <= 40; s += 10)
        store.addMetrics(ids.stage1Run, s, {{"loss", 4.0 - 0.02 * s}});
    store.finishRun(ids.stage1Run, "completed", {}, ids.models["stage1"]);
    ids.stage2Run = store.beginRun("stage2", "{}", ids.models["stage1"]);
    for (int s = 10; s <= 30; s += 10)
        store.addMetrics(ids.stage2Run, s, {{"loss", 3.5 - 0.01 * s}});
    for (int64_t step : {0, 10, 20})
        store.addRouterStats(routerRows(ids.stage2Run, step));
    store.finishRun(ids.stage2Run, "completed", {}, ids.models["stage2"]);
    return ids;
}

} // namespace fixture
