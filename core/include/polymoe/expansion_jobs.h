// Jobs of the MoE expansion, as the CLI and the GUI start them (METHOD.md sections 1-8): layer
// similarity analysis, expert allocation, stage 1 (post-pretraining of upcycled experts on the new
// languages) and stage 2 (review with Language Priors Routing, optional old/new classifier).
// Every job records its results in the project store. No LibTorch types here.
//
// Usage:
//   auto a = polymoe::analyzeSimilarity(store, "base", 100000);
//   auto alloc = polymoe::allocateExperts(store, {.strategy = "layermoe", .budget = 8});
//   auto s1 = polymoe::trainExpansionStage(store, {.stage = 1, .model = "base", .allocationId = alloc.id});
//   auto s2 = polymoe::trainExpansionStage(store, {.stage = 2, .model = s1.modelName});
#pragma once

#include "polymoe/progress.h"
#include "polymoe/project_store.h"
#include "polymoe/training.h"

#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace polymoe {

// Section 1 on a project model. Languages: "new" are the new-group languages of the wave being added
// (a dense model: the lowest wave; an expanded model: the highest, lifelong section 7), "old" the
// old-group languages and the new ones of earlier waves; later waves are left out. Each language's
// sample is tokensPerLanguage text tokens of documents drawn with `seed` from its whole corpus (both
// splits, every source), BOS and EOS not counted; the documents drawn are recorded with the analysis
// (settings "sample").
struct SimilarityAnalysis {
    int64_t id = 0;                      // similarity_analyses row
    int64_t modelId = 0;
    std::vector<std::string> languages;  // the order of `pairs`
    std::vector<bool> isNew;
    std::vector<int64_t> tokens;         // tokens seen per language
    std::vector<double> score;           // S_i per layer
    std::vector<double> newOld;          // mean sim_i over new-old pairs
    std::vector<double> newNew;          // mean sim_i over new-new pairs; NaN with one new language
    std::vector<std::vector<std::vector<double>>> pairs; // [layer][a][b]
};
SimilarityAnalysis analyzeSimilarity(ProjectStore &store, const std::string &modelName, int64_t tokensPerLanguage = 100000,
                                     const ProgressFn &progress = {}, std::stop_token stop = {}, uint64_t seed = 1);

// Section 2. The counts N_i include the original FFN (1 = the layer stays dense).
struct AllocationSpec {
    std::string strategy = "layermoe";   // "layermoe" (budget of new experts from the scores), "uniform", "manual"
    int budget = 0;                      // layermoe: new experts in all; uniform: experts N in every layer
    std::vector<int> experts{};          // manual: N_i per layer
    std::optional<int64_t> analysisId{}; // layermoe: the analysis to use (default: the latest)
    std::string modelName{};             // whose shape the parameters are counted on (default: the analysis's model)
    std::string name{};                  // default: "<strategy>-<new experts>"
    int topK = 2;                        // for the active-parameter count
};
struct AllocationOutcome {
    int64_t id = 0;                      // allocations row
    std::string name;
    std::vector<int> experts;            // N_i per layer
    std::optional<int64_t> analysisId;
    int moeLayers = 0, totalExperts = 0, newExperts = 0;
    int64_t addedParameters = 0;         // weights of the new experts and the routers
    int64_t addedActiveParametersPerToken = 0;
    std::vector<int> nonPositiveScoreLayers; // layermoe: layers with S_i <= 0, allocated as the least similar
};
AllocationOutcome allocateExperts(ProjectStore &store, const AllocationSpec &spec);

// Sections 4-6. Stage 1: the dense `model` is upcycled with the allocation and trained on the new
// languages only (new experts + routers; loss = LM + balanceCoef * mean balance loss). Stage 2: the
// stage-1 `model` is trained on new-language text plus old-language replay (routers, and the
// classifiers when on; loss = LM + lprCoef * mean LPR loss on old-language tokens + classifierCoef *
// mean classifier loss). Everything else stays frozen, bit for bit.
//
// Stage 2's length (Decision of section 9): with train.steps > 0 it runs that many steps; with
// train.steps == 0 it runs as many as make the replayed old-language tokens replayShare of the
// stage-1 tokens, with oldShare of the sequences old. Defaults follow MoE-LPR for user projects
// (1/3 old, 1%); the demo profiles use oldShare 0.5 and a stage 2 of 43% of the stage-1 tokens,
// i.e. replayShare 0.215. Both settings and the resulting token counts are recorded with the run.
struct ExpansionStageSpec {
    int stage = 1;                       // 1 or 2
    std::string model{};                 // stage 1: the dense model; stage 2: the stage-1 model
    std::optional<int64_t> allocationId{}; // stage 1 (default: the latest allocation)
    // kind is set from `stage`. steps 0: stage 1 one epoch of the new-language text, stage 2 from
    // replayShare (above). lr <= 0: 1e-3 (stage 1) / 1e-2 (stage 2), the demo's calibrated values.
    // languageWeights empty: stage 1 the wave's new languages equally, stage 2 oldShare for the old ones.
    TrainConfig train = [] {
        TrainConfig c;
        c.steps = 0;
        c.lr = 0;
        return c;
    }();
    int topK = 2;                        // experts per token
    uint64_t routerSeed = 42;            // stage 1: router initialisation
    // Stage 1, beyond the papers (off by default): the embedding and LM-head rows of the tokens that
    // occur (almost) only in the new languages' training text train too (kNewTokenMaxOldShare); every
    // other row, and the tied embedding's too, stays frozen. Recorded with the run.
    bool trainNewTokenRows = false;
    double balanceCoef = 0.01;           // stage 1
    double lprCoef = 0.1;                // stage 2
    bool classifier = false;             // stage 2: the old/new classifier of section 6
    double classifierShare = 0.3;        // of the MoE layers, those with the highest S_i
    double classifierCoef = 0.1;
    double oldShare = 1.0 / 3.0;         // stage 2: share of sequences of old-language text
    double replayShare = 0.01;           // stage 2: replayed old tokens / stage-1 tokens (when steps == 0)
    int64_t routerStatsEvery = 50;       // steps between router statistics on the probe set; 0 = start and end only
    int64_t probeSequences = 4;          // held-out sequences per language in the probe set
    std::string outputName{};            // default "stage1" / "stage2" (made unique)
    bool resume = false;                 // continue the last unfinished run of this stage
};

// A token is a new-language token (ExpansionStageSpec::trainNewTokenRows) when it occurs in the new
// languages' training text and its frequency in the old languages' text (occurrences per token of
// that group) is at most this share of the sum of its two frequencies.
inline constexpr double kNewTokenMaxOldShare = 0.01;

// A project model's token rows by group: the new-language tokens of the first wave (the rule above),
// the old-language tokens (the same rule with the groups swapped), the shared ones and those its
// training text never has; per group the count and the median L2 norm of the embedding and the
// LM-head rows. Frozen in stages 1 and 2, these rows bound what a new language can learn there.
struct TokenRowGroup {
    std::string group;
    int64_t tokens = 0;
    double medianEmbeddingNorm = 0, medianHeadNorm = 0; // NaN for an empty group
};
std::vector<TokenRowGroup> tokenRowStatistics(const ProjectStore &store, const std::string &modelName);

// The routing of the probe set for one layer x language x expert (section 8).
struct RouterStatRow {
    int layer = 0;
    std::string language;
    bool isNew = false;
    int expert = 0;
    double slotShare = 0, top1Share = 0, entropy = 0;
};

struct ExpansionOutcome {
    TrainResult train;
    int64_t runId = 0;
    int64_t modelId = 0;
    std::string modelName;
    std::filesystem::path modelDir;
    std::vector<int> experts;            // N_i per layer
    std::vector<int> classifierLayers;
    std::vector<PerplexityRow> evaluation;
    std::vector<RouterStatRow> routerStats; // of the saved model
    int64_t replayTokens = 0;            // stage 2: old-language tokens seen (expected: steps * batch * seq * oldShare)
    int64_t stage1Tokens = 0;            // stage 2: tokens of the stage-1 run
};
ExpansionOutcome trainExpansionStage(ProjectStore &store, const ExpansionStageSpec &spec, const TrainStatusFn &status = {},
                                     const ProgressFn &progress = {}, std::stop_token stop = {});

// The share of `language`'s probe tokens whose top-1 expert is expert 0 in `layer` (NaN if absent).
double expert0Top1Share(const std::vector<RouterStatRow> &rows, int layer, const std::string &language);

} // namespace polymoe
