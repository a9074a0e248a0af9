// Stage 2's set-up (METHOD.md sections 5 and 6): review with Language Priors Routing on the new
// languages plus a replay of the old ones.
//
//   trainable: the routers (and the old/new classifiers)
//   loss:      LM cross-entropy + lprCoef * mean over the MoE layers of mean_{old tokens} -log p_0(h)
//              (+ classifierCoef * the classifier's cross-entropy against the sequence's group)
//   length:    replayed old tokens = replayShare * stage-1 tokens, oldShare of the sequences old
//              (Decision of section 9), unless the steps are set
//   classifier (section 6): a map d -> 2 in the K layers of highest S_i, K = classifierShare of the
//              MoE layers
#include "expansion_stage.h"

#include "expansion_losses.h"
#include "moe_block.h"
#include "polymoe/error.h"
#include "similarity.h"
#include "upcycle.h"

#include <torch/utils.h>

#include <cmath>
#include <fstream>

namespace polymoe::detail {

namespace {

// Stage-1 tokens: the stage-1 run's last "tokens" metric, else the model's provenance.
int64_t stage1TokensOf(const ProjectStore &store, const std::optional<RunRecord> &s1Run, const ModelRecord &inRec)
{
    int64_t tokens = 0;
    if (s1Run)
        if (auto t = store.metricSeries(s1Run->id, "tokens"); !t.empty())
            tokens = int64_t(t.back().second);
    if (!tokens) {
        std::ifstream in(store.modelPath(inRec) / "polymoe.json");
        const auto prov = nlohmann::json::parse(in, nullptr, false);
        if (prov.is_object())
            tokens = prov.value("tokens", int64_t(0));
    }
    return tokens;
}

// Section 6: turns the classifier on in the layers of highest S_i, from the stage-1 allocation's
// analysis (else the latest analysis of the dense parent). Returns the analysis used.
int64_t setUpClassifiers(const StageInputs &in, const ExpansionStageSpec &spec, const nlohmann::json &s1Config,
                         uint64_t seed, ExpansionOutcome &out)
{
    std::optional<int64_t> analysisId;
    if (s1Config.is_object() && s1Config.contains("allocation_id"))
        if (auto a = in.store.allocation(s1Config["allocation_id"].get<int64_t>()))
            analysisId = a->analysisId;
    if (!analysisId)
        for (const auto &a : in.store.similarityAnalyses())
            if (a.modelId == in.inRec.parentId)
                analysisId = a.id;
    if (!analysisId)
        throw ConfigError("stage 2: the classifier needs layer scores; run the similarity analysis first");
    const auto scores = scoresOf(in.store, *analysisId);
    out.classifierLayers = classifierLayers(scores, in.inLayout.expertsPerLayer, spec.classifierShare);
    // The classifiers' Xavier-normal initialisation, seeded by the run's seed.
    torch::manual_seed(seed);
    const at::NoGradGuard noGrad;
    CausalLM model = in.model;
    for (int l : out.classifierLayers)
        std::dynamic_pointer_cast<MoeBlockImpl>(model->layer(l)->mlp())->setClassifier(true);
    return *analysisId;
}

} // namespace

void planStage2(const StageInputs &in, const ExpansionStageSpec &spec, StagePlan &plan, ExpansionOutcome &out)
{
    if (in.inLayout.empty())
        throw ConfigError("stage 2: model '" + in.inRec.name + "' is not an expanded model; run stage 1 first");
    // The wave is stage 1's: its new languages are reviewed, all earlier ones replayed.
    const auto s1Run = producingRun(in.store, in.inRec.id);
    nlohmann::json s1Config = s1Run ? nlohmann::json::parse(s1Run->config, nullptr, false) : nlohmann::json();
    std::optional<int> wave;
    if (s1Config.is_object() && s1Config.contains("wave"))
        wave = s1Config["wave"].get<int>();
    plan.wave = wavePlan(in.store, wave, false);
    if (!(spec.oldShare > 0 && spec.oldShare < 1))
        throw ConfigError("stage 2: the old-language share of sequences must be in (0, 1), not " +
                          std::to_string(spec.oldShare));
    // oldShare of the sequences old-language (the replay), split equally; the rest new.
    TrainConfig &cfg = plan.cfg;
    if (cfg.languageWeights.empty()) {
        for (const auto &c : plan.wave.old)
            cfg.languageWeights[c] = spec.oldShare / double(plan.wave.old.size());
        for (const auto &c : plan.wave.fresh)
            cfg.languageWeights[c] = (1 - spec.oldShare) / double(plan.wave.fresh.size());
    }
    out.stage1Tokens = stage1TokensOf(in.store, s1Run, in.inRec);
    if (cfg.steps <= 0) {
        // Decision of section 9: replayed old tokens = replayShare * stage-1 tokens, and a step
        // replays oldShare * batch * seq of them.
        if (out.stage1Tokens <= 0)
            throw ConfigError("stage 2: the stage-1 token count of '" + in.inRec.name + "' is unknown; set the steps");
        const double steps = spec.replayShare * double(out.stage1Tokens) /
                             (spec.oldShare * double(sequencesPerStep(cfg) * cfg.seqLen));
        cfg.steps = std::max<int64_t>(1, std::llround(steps));
    }
    if (spec.classifier)
        plan.details["classifier_analysis_id"] = setUpClassifiers(in, spec, s1Config, cfg.seed, out);

    CausalLM model = in.model;
    plan.trainable = expansionTrainable(model, /*experts=*/false, /*routers=*/true, spec.classifier);
    plan.loss = stage2Loss(model, spec.lprCoef, spec.classifier ? spec.classifierCoef : 0.0);
    const int64_t stage2Tokens = cfg.steps * sequencesPerStep(cfg) * cfg.seqLen;
    out.replayTokens = std::llround(double(stage2Tokens) * spec.oldShare);
    plan.details["stage1_tokens"] = out.stage1Tokens;
    plan.details["stage2_tokens"] = stage2Tokens;
    plan.details["replay_tokens"] = out.replayTokens; // expected: the batcher draws rows by weight
    plan.details["effective_replay_share"] =
        out.stage1Tokens > 0 ? double(out.replayTokens) / double(out.stage1Tokens) : 0.0;
    if (s1Config.is_object() && s1Config.contains("allocation_id"))
        plan.details["allocation_id"] = s1Config["allocation_id"];
}

} // namespace polymoe::detail
