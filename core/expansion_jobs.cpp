// The expansion jobs (METHOD.md sections 1-8): similarity analysis, expert allocation, stage 1 and
// stage 2, each recorded in the project store (see polymoe/expansion_jobs.h).
#include "polymoe/expansion_jobs.h"

#include "polymoe/allocation.h"
#include "expansion_losses.h"
#include "model_io.h"
#include "moe_block.h"
#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "polymoe/run_liveness.h"
#include "project_data.h"
#include "project_models.h"
#include "router_stats.h"
#include "similarity.h"
#include "similarity_sample.h"
#include "trainer.h"
#include "upcycle.h"

#include <nlohmann/json.hpp>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

namespace polymoe {

namespace fs = std::filesystem;

namespace {

// Old languages are wave 0; a new language without a wave counts as wave 1.
int effectiveWave(const Language &l) { return l.group == LanguageGroup::Old ? 0 : std::max(l.wave, 1); }

// Which languages are old and new for the wave being added (section 7).
struct WavePlan {
    int wave = 1;
    std::vector<std::string> old, fresh; // fresh = the wave's new languages
};

WavePlan wavePlan(const ProjectStore &store, std::optional<int> wave, bool expandedModel)
{
    const auto langs = store.languages();
    std::set<int> waves;
    for (const auto &l : langs)
        if (l.group == LanguageGroup::New)
            waves.insert(effectiveWave(l));
    if (waves.empty())
        throw ConfigError(store.path().string() + ": the project has no new language to add");
    WavePlan p;
    // A dense model learns the first wave; an expanded one the latest (lifelong expansion).
    p.wave = wave ? *wave : (expandedModel ? *waves.rbegin() : *waves.begin());
    for (const auto &l : langs) {
        const int w = effectiveWave(l);
        if (w < p.wave)
            p.old.push_back(l.code);
        else if (w == p.wave)
            p.fresh.push_back(l.code);
    }
    if (p.old.empty())
        throw ConfigError(store.path().string() + ": the project has no old language");
    if (p.fresh.empty())
        throw ConfigError(store.path().string() + ": no new language in wave " + std::to_string(p.wave) +
                          "; add one with 'polymoe corpus add PROJECT --group new --wave " + std::to_string(p.wave) + " ...'");
    return p;
}

const LanguageStream *findStream(const std::vector<LanguageStream> &streams, const std::string &code)
{
    for (const auto &s : streams)
        if (s.language == code)
            return &s;
    return nullptr;
}

std::vector<RouterStatRecord> toRecords(const std::vector<RouterStatRow> &rows, int64_t runId,
                                        std::optional<int64_t> modelId, int64_t step)
{
    std::vector<RouterStatRecord> out;
    out.reserve(rows.size());
    for (const auto &r : rows)
        out.push_back({runId, modelId, step, r.layer, r.language, r.expert, r.slotShare, r.top1Share, r.entropy});
    return out;
}

nlohmann::json specToJson(const ExpansionStageSpec &s)
{
    nlohmann::json j = {{"stage", s.stage}, {"model", s.model}, {"top_k", s.topK}, {"router_seed", s.routerSeed},
                        {"balance_coef", s.balanceCoef}, {"lpr_coef", s.lprCoef}, {"classifier", s.classifier},
                        {"classifier_share", s.classifierShare}, {"classifier_coef", s.classifierCoef},
                        {"old_share", s.oldShare}, {"replay_share", s.replayShare},
                        {"router_stats_every", s.routerStatsEvery}, {"probe_sequences", s.probeSequences},
                        {"output_name", s.outputName}};
    if (s.allocationId)
        j["allocation_id"] = *s.allocationId;
    return j;
}

ExpansionStageSpec specFromJson(const nlohmann::json &j, const TrainConfig &train)
{
    ExpansionStageSpec s;
    s.stage = j.at("stage").get<int>();
    s.model = j.at("model").get<std::string>();
    if (j.contains("allocation_id"))
        s.allocationId = j["allocation_id"].get<int64_t>();
    s.train = train;
    s.topK = j.value("top_k", s.topK);
    s.routerSeed = j.value("router_seed", s.routerSeed);
    s.balanceCoef = j.value("balance_coef", s.balanceCoef);
    s.lprCoef = j.value("lpr_coef", s.lprCoef);
    s.classifier = j.value("classifier", s.classifier);
    s.classifierShare = j.value("classifier_share", s.classifierShare);
    s.classifierCoef = j.value("classifier_coef", s.classifierCoef);
    s.oldShare = j.value("old_share", s.oldShare);
    s.replayShare = j.value("replay_share", s.replayShare);
    s.routerStatsEvery = j.value("router_stats_every", s.routerStatsEvery);
    s.probeSequences = j.value("probe_sequences", s.probeSequences);
    s.outputName = j.value("output_name", s.outputName);
    s.resume = true;
    return s;
}

// The run that produced a model, if the project has it.
std::optional<RunRecord> producingRun(const ProjectStore &store, int64_t modelId)
{
    for (const auto &r : store.runs())
        if (r.modelOut == modelId)
            return r;
    return std::nullopt;
}

std::vector<double> scoresOf(const ProjectStore &store, int64_t analysisId)
{
    std::vector<double> s;
    for (const auto &r : store.layerScores(analysisId))
        s.push_back(r.score);
    return s;
}

} // namespace

double expert0Top1Share(const std::vector<RouterStatRow> &rows, int layer, const std::string &language)
{
    for (const auto &r : rows)
        if (r.layer == layer && r.language == language && r.expert == 0)
            return r.top1Share;
    return std::nan("");
}

// --- Section 1 --------------------------------------------------------------------------------

SimilarityAnalysis analyzeSimilarity(ProjectStore &store, const std::string &modelName, int64_t tokensPerLanguage,
                                     const ProgressFn &progress, std::stop_token stop, uint64_t seed)
{
    if (tokensPerLanguage < 1)
        throw ConfigError("similarity: tokens per language must be positive");
    const ModelRecord rec = requireModel(store, modelName);
    CausalLM model = loadModelFolder(store.modelPath(rec));
    setTrainingThreads(0);
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
    const int32_t eos = projectSpecialTokens(store).eos;
    const int64_t seqLen = std::min<int64_t>(128, model->config().maxPositionEmbeddings);
    const int L = int(model->numLayers());
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
        // Windows in batches of 16, right-padded; padding and BOS positions are masked out (the
        // attention is causal, so padding after a window's end changes nothing before it).
        for (size_t b = 0; b < sample.windows.size(); b += 16) {
            throwIfStopped(stop);
            const size_t e = std::min(sample.windows.size(), b + 16);
            int64_t width = 0;
            for (size_t k = b; k < e; ++k)
                width = std::max<int64_t>(width, int64_t(sample.windows[k].ids.size()));
            const int64_t rows = int64_t(e - b);
            std::vector<int64_t> ids(size_t(rows * width), 0);
            std::vector<uint8_t> mask(size_t(rows * width), 0);
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

    SimilarityAnalysisRecord a;
    a.modelId = rec.id;
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
        if (std::isfinite(out.newNew[size_t(l)]))
            r.newNew = out.newNew[size_t(l)];
        layerRows.push_back(r);
    }
    out.id = store.addSimilarityAnalysis(a, values, layerRows);
    return out;
}

// --- Section 2 --------------------------------------------------------------------------------

AllocationOutcome allocateExperts(ProjectStore &store, const AllocationSpec &spec)
{
    const auto analyses = store.similarityAnalyses();
    std::optional<SimilarityAnalysisRecord> analysis;
    if (spec.analysisId) {
        for (const auto &a : analyses)
            if (a.id == *spec.analysisId)
                analysis = a;
        if (!analysis)
            throw ConfigError(store.path().string() + ": no similarity analysis " + std::to_string(*spec.analysisId));
    }
    // The model whose shape counts: named, else the analysis's.
    std::optional<ModelRecord> model;
    if (!spec.modelName.empty())
        model = requireModel(store, spec.modelName);
    if (!analysis) {
        // The latest analysis (of the named model, when one is named).
        for (const auto &a : analyses)
            if (!model || a.modelId == model->id)
                analysis = a;
    }
    if (!model && analysis && analysis->modelId)
        model = store.model(*analysis->modelId);
    if (!model)
        throw ConfigError(store.path().string() + ": allocation needs a model (its shape) or a similarity analysis");
    const ModelConfig mc = parseModelConfig(model->config, "model '" + model->name + "'");
    const int L = int(mc.numLayers);

    std::vector<int> experts, adjustedLayers;
    std::optional<int64_t> budget;
    if (spec.strategy == "layermoe") {
        if (!analysis)
            throw ConfigError(store.path().string() + ": the layermoe allocation needs a similarity analysis; run it first");
        if (spec.budget < 0)
            throw ConfigError("layermoe: the budget of new experts must not be negative");
        const auto scores = scoresOf(store, analysis->id);
        if (int(scores.size()) != L)
            throw ConfigError("similarity analysis " + std::to_string(analysis->id) + " has " + std::to_string(scores.size()) +
                              " layer scores; model '" + model->name + "' has " + std::to_string(L) + " layers");
        experts = layerMoeAllocationForBudget(scoresForLayerMoe(scores, &adjustedLayers), spec.budget);
        budget = spec.budget;
    } else if (spec.strategy == "uniform") {
        if (spec.budget < 1)
            throw ConfigError("uniform: experts per layer must be at least 1, not " + std::to_string(spec.budget));
        experts = uniformAllocation(L, spec.budget);
        budget = spec.budget;
    } else if (spec.strategy == "manual") {
        experts = spec.experts;
    } else {
        throw ConfigError("allocation strategy must be layermoe, uniform or manual, not '" + spec.strategy + "'");
    }
    validateAllocation(experts, L);
    const AllocationSummary sum = summarizeAllocation(experts, mc.hiddenSize, mc.intermediateSize, spec.topK);
    if (spec.strategy == "manual")
        budget = sum.newExperts;

    AllocationRecord r;
    r.name = spec.name.empty() ? spec.strategy + "-" + std::to_string(sum.newExperts) : spec.name;
    r.strategy = spec.strategy;
    r.budget = budget;
    r.experts = experts;
    if (analysis)
        r.analysisId = analysis->id;
    r.addedParameters = sum.addedParameters;

    AllocationOutcome out;
    out.id = store.addAllocation(r);
    out.name = r.name;
    out.experts = experts;
    out.analysisId = r.analysisId;
    out.moeLayers = sum.moeLayers;
    out.totalExperts = sum.totalExperts;
    out.newExperts = sum.newExperts;
    out.addedParameters = sum.addedParameters;
    out.addedActiveParametersPerToken = sum.addedActiveParametersPerToken;
    out.nonPositiveScoreLayers = adjustedLayers;
    return out;
}

// --- Sections 4-6, 8 --------------------------------------------------------------------------

ExpansionOutcome trainExpansionStage(ProjectStore &store, const ExpansionStageSpec &specIn, const TrainStatusFn &status,
                                     const ProgressFn &progress, std::stop_token stop)
{
    const auto tokRec = currentTokenizerRecord(store);
    if (!tokRec)
        throw ConfigError(store.path().string() + ": the project has no tokenizer yet; run 'polymoe tokenizer train'");
    ExpansionStageSpec spec = specIn;
    if (spec.stage != 1 && spec.stage != 2)
        throw ConfigError("expansion stage must be 1 or 2, not " + std::to_string(spec.stage));
    const std::string kind = spec.stage == 1 ? "stage1" : "stage2";

    // Resume: the unfinished run of this stage, with its own stored settings.
    int64_t runId = 0;
    nlohmann::json runConfig;
    if (spec.resume) {
        const auto run = store.unfinishedRun(kind, specIn.outputName);
        if (!run)
            throw ConfigError(store.path().string() + ": no unfinished " + kind + " run" +
                              (specIn.outputName.empty() ? "" : " making '" + specIn.outputName + "'") + " to resume");
        if (const auto l = runLiveness(*run); l == RunLiveness::Alive || l == RunLiveness::Remote)
            throw ConfigError(store.path().string() + ": run " + std::to_string(run->id) + " is still running (process " +
                              std::to_string(run->pid.value_or(0)) + " on " + (run->host.empty() ? "this host" : run->host) +
                              "); stop it before resuming");
        runId = run->id;
        runConfig = nlohmann::json::parse(run->config);
        spec = specFromJson(runConfig.at("expansion"),
                            trainConfigFromJson(runConfig.at("train").dump(), "run " + std::to_string(runId)));
    }
    TrainConfig cfg = spec.train;
    cfg.kind = kind;
    if (cfg.lr <= 0)
        cfg.lr = spec.stage == 1 ? 1e-3 : 1e-2; // the calibrated demo values (section 9)
    const std::string outName = spec.outputName.empty() ? store.uniqueModelName(kind) : spec.outputName;
    if (!runId && store.model(outName))
        throw ConfigError(store.path().string() + ": a model named '" + outName + "' already exists");
    spec.outputName = outName;

    const ModelRecord inRec = requireModel(store, spec.model);
    CausalLM model = loadModelFolder(store.modelPath(inRec));
    checkVocabularyFits(model->config().vocabSize, tokRec->vocabSize, "model '" + inRec.name + "'");
    const MoeLayout inLayout = moeLayoutOf(*model);

    ExpansionOutcome out;
    nlohmann::json details;
    WavePlan plan;
    std::vector<std::pair<std::string, at::Tensor>> trainable;
    LossFn loss;
    auto trainStreamsAll = projectStreams(store, "train");
    auto tokensOf = [&](const std::string &code) {
        const LanguageStream *s = findStream(trainStreamsAll, code);
        return s ? int64_t(s->tokens.size()) : int64_t(0);
    };

    if (spec.stage == 1) {
        // Lifelong expansion (section 7) of an expanded model: the next wave's languages are new, all
        // earlier ones old; every existing expert stays frozen.
        std::optional<int> wave;
        if (!inLayout.empty()) {
            const auto made = producingRun(store, inRec.id);
            const auto c = made ? nlohmann::json::parse(made->config, nullptr, false) : nlohmann::json();
            if (!c.is_object() || !c.contains("wave"))
                throw ConfigError("stage 1: model '" + inRec.name + "' is expanded but its wave is unknown (no run "
                                  "of this project made it); lifelong expansion needs it");
            wave = c["wave"].get<int>() + 1;
        }
        std::optional<AllocationRecord> alloc;
        if (spec.allocationId)
            alloc = store.allocation(*spec.allocationId);
        else if (auto all = store.allocations(); !all.empty())
            alloc = all.back();
        if (!alloc)
            throw ConfigError(store.path().string() + ": stage 1 needs an expert allocation; run 'allocate' first");
        spec.allocationId = alloc->id;
        validateAllocation(alloc->experts, int(model->numLayers()));
        if (*std::max_element(alloc->experts.begin(), alloc->experts.end()) < 2)
            throw ConfigError("allocation '" + alloc->name + "' adds no expert");
        plan = wavePlan(store, wave, false);
        std::vector<int> firstNew;
        if (inLayout.empty()) {
            upcycleModel(model, alloc->experts, spec.topK, spec.routerSeed);
        } else {
            std::vector<int> add;
            for (int n : alloc->experts)
                add.push_back(n - 1); // the allocation's N_i - 1 new experts join the layer's existing ones
            firstNew = growMoeModel(model, add, spec.topK, spec.routerSeed);
            details["lifelong"] = true;
            details["first_new_expert"] = firstNew;
        }
        if (cfg.languageWeights.empty())
            for (const auto &c : plan.fresh)
                cfg.languageWeights[c] = 1.0 / double(plan.fresh.size());
        if (cfg.steps <= 0) {
            // One epoch of the new-language text (section 4).
            int64_t total = 0;
            for (const auto &c : plan.fresh)
                total += tokensOf(c);
            cfg.steps = std::max<int64_t>(1, total / (cfg.batchSize * cfg.seqLen));
        }
        trainable = expansionTrainable(model, true, true, false, firstNew);
        loss = stage1Loss(model, spec.balanceCoef);
        details["allocation_id"] = alloc->id;
        details["allocation"] = alloc->name;
    } else {
        if (inLayout.empty())
            throw ConfigError("stage 2: model '" + inRec.name + "' is not an expanded model; run stage 1 first");
        const auto s1Run = producingRun(store, inRec.id);
        nlohmann::json s1Config = s1Run ? nlohmann::json::parse(s1Run->config, nullptr, false) : nlohmann::json();
        std::optional<int> wave;
        if (s1Config.is_object() && s1Config.contains("wave"))
            wave = s1Config["wave"].get<int>();
        plan = wavePlan(store, wave, false);
        if (!(spec.oldShare > 0 && spec.oldShare < 1))
            throw ConfigError("stage 2: the old-language share of sequences must be in (0, 1), not " +
                              std::to_string(spec.oldShare));
        if (cfg.languageWeights.empty()) {
            for (const auto &c : plan.old)
                cfg.languageWeights[c] = spec.oldShare / double(plan.old.size());
            for (const auto &c : plan.fresh)
                cfg.languageWeights[c] = (1 - spec.oldShare) / double(plan.fresh.size());
        }
        // Stage-1 tokens: the stage-1 run's last "tokens" metric, else the model's provenance.
        if (s1Run)
            if (auto t = store.metricSeries(s1Run->id, "tokens"); !t.empty())
                out.stage1Tokens = int64_t(t.back().second);
        if (!out.stage1Tokens) {
            std::ifstream in(store.modelPath(inRec) / "polymoe.json");
            const auto prov = nlohmann::json::parse(in, nullptr, false);
            if (prov.is_object())
                out.stage1Tokens = prov.value("tokens", int64_t(0));
        }
        if (cfg.steps <= 0) {
            // Decision of section 9: replayed old tokens = replayShare * stage-1 tokens.
            if (out.stage1Tokens <= 0)
                throw ConfigError("stage 2: the stage-1 token count of '" + inRec.name + "' is unknown; set the steps");
            const double steps = spec.replayShare * double(out.stage1Tokens) /
                                 (spec.oldShare * double(cfg.batchSize * cfg.seqLen));
            cfg.steps = std::max<int64_t>(1, std::llround(steps));
        }
        // The classifier layers (section 6): the highest S_i of the allocation's analysis.
        if (spec.classifier) {
            std::optional<int64_t> analysisId;
            if (s1Config.is_object() && s1Config.contains("allocation_id"))
                if (auto a = store.allocation(s1Config["allocation_id"].get<int64_t>()))
                    analysisId = a->analysisId;
            if (!analysisId)
                for (const auto &a : store.similarityAnalyses())
                    if (a.modelId == inRec.parentId)
                        analysisId = a.id;
            if (!analysisId)
                throw ConfigError("stage 2: the classifier needs layer scores; run the similarity analysis first");
            const auto scores = scoresOf(store, *analysisId);
            out.classifierLayers = classifierLayers(scores, inLayout.expertsPerLayer, spec.classifierShare);
            torch::manual_seed(cfg.seed);
            const at::NoGradGuard noGrad;
            for (int l : out.classifierLayers)
                std::dynamic_pointer_cast<MoeBlockImpl>(model->layer(l)->mlp())->setClassifier(true);
            details["classifier_analysis_id"] = *analysisId;
        }
        trainable = expansionTrainable(model, false, true, spec.classifier);
        loss = stage2Loss(model, spec.lprCoef, spec.classifier ? spec.classifierCoef : 0.0);
        const int64_t stage2Tokens = cfg.steps * cfg.batchSize * cfg.seqLen;
        out.replayTokens = std::llround(double(stage2Tokens) * spec.oldShare);
        details["stage1_tokens"] = out.stage1Tokens;
        details["stage2_tokens"] = stage2Tokens;
        details["replay_tokens"] = out.replayTokens; // expected: the batcher draws rows by weight
        details["effective_replay_share"] =
            out.stage1Tokens > 0 ? double(out.replayTokens) / double(out.stage1Tokens) : 0.0;
        if (s1Config.is_object() && s1Config.contains("allocation_id"))
            details["allocation_id"] = s1Config["allocation_id"];
    }
    // Section 7: in wave w the languages of earlier waves are old everywhere (replay, the LPR mask,
    // the classifier's labels), not only for similarity; the group stored with a language is its
    // group in its own wave.
    auto groupByWave = [&](std::vector<LanguageStream> &all) {
        for (auto &s : all)
            s.isNew = std::find(plan.fresh.begin(), plan.fresh.end(), s.language) != plan.fresh.end();
    };
    groupByWave(trainStreamsAll);
    // The languages whose rows the stage treats as old (LPR mask, classifier label 0), from the very
    // streams the batcher reads: recorded with the run.
    {
        std::vector<std::string> asOld;
        for (const auto &st : trainStreamsAll)
            if (!st.isNew)
                asOld.push_back(st.language);
        details["old_rows_languages"] = asOld;
    }
    out.experts = moeLayoutOf(*model).expertsPerLayer;
    if (out.classifierLayers.empty())
        out.classifierLayers = moeLayoutOf(*model).classifierLayers;

    checkTrainingDevice(cfg); // a refused device or dtype records no run
    if (!runId) {
        runConfig = {{"train", nlohmann::json::parse(trainConfigToJson(cfg))},
                     {"expansion", specToJson(spec)},
                     {"model", nlohmann::json::parse(modelConfigToJson(model->config()))},
                     {"model_in", inRec.name}, {"parent_id", inRec.id}, {"tokenizer_id", tokRec->id},
                     {"wave", plan.wave}, {"old_languages", plan.old}, {"new_languages", plan.fresh},
                     {"experts_per_layer", out.experts}, {"classifier_layers", out.classifierLayers},
                     {"old_share", spec.oldShare}, {"replay_share", spec.replayShare}, {"output_name", outName}};
        for (auto it = details.begin(); it != details.end(); ++it)
            runConfig[it.key()] = it.value();
        runId = store.beginRun(kind, runConfig.dump(), inRec.id);
    } else {
        store.resumeRun(runId); // the run row is reused: running again, in this process
    }
    out.runId = runId;
    const fs::path runDir = store.ensureDataDir("runs/" + std::to_string(runId));

    std::vector<LanguageStream> streams;
    for (auto &s : trainStreamsAll) {
        auto it = cfg.languageWeights.find(s.language);
        s.weight = it == cfg.languageWeights.end() ? 0.0 : it->second;
        streams.push_back(std::move(s));
    }
    trainStreamsAll.clear();
    SequenceBatcher batcher(std::move(streams), cfg.seqLen, cfg.seed);
    auto heldout = projectStreams(store, "heldout");
    groupByWave(heldout);
    const auto probe = makeProbeSets(heldout, cfg.seqLen, spec.probeSequences);
    auto recordStats = [&](int64_t step, std::optional<int64_t> modelId) {
        auto rows = routerStatistics(*model, probe);
        store.addRouterStats(toRecords(rows, runId, modelId, step));
        return rows;
    };

    TrainingJob job;
    job.model = model;
    job.trainable = trainable;
    job.batcher = &batcher;
    job.config = cfg;
    job.loss = loss;
    job.checkpointDir = runDir;
    job.store = &store;
    job.runId = runId;
    job.resume = spec.resume && hasCheckpoint(runDir);
    // Router statistics on step boundaries (section 8): before the first step, every N steps, at the end.
    const TrainStatusFn withStats = [&](const TrainStatus &s) {
        if (spec.routerStatsEvery > 0 && s.step % spec.routerStatsEvery == 0 && s.step < s.totalSteps)
            recordStats(s.step, std::nullopt);
        if (status)
            status(s);
    };

    try {
        if (!job.resume)
            recordStats(0, std::nullopt);
        out.train = runTraining(job, withStats, stop);
        nlohmann::json prov = {{"polymoe_version", POLYMOE_VERSION}, {"run_id", runId}, {"kind", kind},
                               {"project", fs::absolute(store.path()).string()}, {"steps", out.train.steps},
                               {"tokens", out.train.tokens}, {"dtype", out.train.dtype}, {"parent", inRec.name},
                               {"experts_per_layer", out.experts}};
        // The model's row and the run's completion in one transaction: a run killed in between is
        // never left unfinished beside its own output model (a resume would then refuse the name).
        store.transaction([&] {
            const ModelRecord rec = saveProjectModel(store, *model, outName, "expanded", inRec.id, tokRec->id, prov.dump(2));
            out.modelId = rec.id;
            out.modelName = rec.name;
            out.modelDir = store.modelPath(rec);
            store.finishRun(runId, "completed", "", out.modelId, out.train.checkpoint);
        });
    } catch (const Cancelled &) {
        store.finishRun(runId, "cancelled", "stopped by the user; resume with --resume", std::nullopt,
                        (runDir / "checkpoint").string());
        throw;
    } catch (const std::exception &e) {
        store.finishRun(runId, "failed", e.what());
        throw;
    }
    out.routerStats = recordStats(out.train.steps, out.modelId);
    out.evaluation = evaluateAndRecord(store, *model, out.modelId, runId, cfg.seqLen, cfg.evalTokens, cfg.batchSize,
                                       progress, stop);
    return out;
}

} // namespace polymoe
