// What the files of the expansion jobs share (METHOD.md sections 1-8): the wave plan of section 7,
// the plan a stage's set-up fills (stage 1: expansion_stage1.cpp, stage 2: expansion_stage2.cpp)
// and the run that carries it out (expansion_stage_run.cpp).
//
// Usage (the shape of trainExpansionStage):
//   StagePlan plan{.cfg = spec.train};
//   if (spec.stage == 1) planStage1(ctx, spec, plan); else planStage2(ctx, spec, plan, out);
//   // plan.trainable and plan.loss go to the trainer, plan.details into the run's config
#pragma once

#include "model_io.h"
#include "models/llama.h"
#include "polymoe/expansion_jobs.h"
#include "polymoe/project_store.h"
#include "project_data.h"
#include "trainer.h"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace polymoe::detail {

// Which languages are old and new for the wave being added (section 7).
struct WavePlan {
    int wave = 1;
    std::vector<std::string> old, fresh; // fresh = the wave's new languages
};

// What a stage's set-up decides, for the run to carry out.
struct StagePlan {
    TrainConfig cfg;                     // the spec's, with steps and language weights filled in
    WavePlan wave{};
    std::vector<std::pair<std::string, at::Tensor>> trainable{}; // (name, parameter); the rest stays frozen
    std::map<std::string, at::Tensor> trainableRows{}; // of those, matrices of which only some rows train
    LossFn loss{};
    nlohmann::json details{};            // merged into the run's config (allocation, replay budget...)
};

// What both set-ups read: the input model (upcycled or grown in place by stage 1) and the project.
struct StageInputs {
    ProjectStore &store;
    const ModelRecord &inRec;            // the input model's row
    CausalLM model;
    MoeLayout inLayout;                  // of the input model, before any growth
    const std::vector<LanguageStream> &trainStreams; // the "train" split, for token counts
};

// --- expansion_lifelong.cpp (section 7) ---
// The languages of the wave: a dense model learns the first wave, an expanded one the latest.
WavePlan wavePlan(const ProjectStore &store, std::optional<int> wave, bool expandedModel);
// The run that produced a model, if the project has it.
std::optional<RunRecord> producingRun(const ProjectStore &store, int64_t modelId);
// The wave that stage 1 adds to an expanded model: one after the wave its producing run recorded.
int nextWave(const ProjectStore &store, const ModelRecord &expanded);
// Adds an allocation's N_i - 1 new experts to every layer of an expanded model; returns the index of
// each layer's first new expert.
std::vector<int> growExpandedModel(CausalLM &model, const std::vector<int> &experts, int topK, uint64_t seed);
// Marks a stream new exactly when its language is one of the wave's new languages.
void groupByWave(std::vector<LanguageStream> &streams, const WavePlan &plan);

// --- expansion_stage1.cpp (sections 3, 4, 7) and expansion_stage2.cpp (sections 5, 6) ---
void planStage1(const StageInputs &in, ExpansionStageSpec &spec, StagePlan &plan);
// Per token id below vocabSize: whether it is a new-language token of the wave (kNewTokenMaxOldShare),
// counted over the streams of the wave's languages (later waves' are left out).
std::vector<bool> newLanguageTokens(const std::vector<LanguageStream> &streams, const WavePlan &wave, int64_t vocabSize,
                                    double maxOldShare = kNewTokenMaxOldShare);
void planStage2(const StageInputs &in, const ExpansionStageSpec &spec, StagePlan &plan, ExpansionOutcome &out);

// --- small lookups shared by the jobs ---
inline const LanguageStream *findStream(const std::vector<LanguageStream> &streams, const std::string &code)
{
    for (const auto &s : streams)
        if (s.language == code)
            return &s;
    return nullptr;
}

// S_i per layer of a similarity analysis.
inline std::vector<double> scoresOf(const ProjectStore &store, int64_t analysisId)
{
    std::vector<double> s;
    for (const auto &r : store.layerScores(analysisId))
        s.push_back(r.score);
    return s;
}

} // namespace polymoe::detail
