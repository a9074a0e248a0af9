// The allocation job (METHOD.md section 2, LayerMoE), recorded in the store. N_i counts all experts
// of layer i, the frozen original included (new experts = N_i - 1):
//
//   layermoe: N_i = ceil( (1/S_i) / sum_j (1/S_j) * delta ), delta found so that sum_i (N_i - 1) is
//             the largest total not above the budget B (the remainder to the least similar layers)
//   uniform (MoE-LPR): N_i = n in every layer;  manual: the user's list, validated
//
// The rules themselves are in allocation.cpp; this file picks the analysis and the model whose
// shape counts (3 * d_model * d_ffn weights per new expert, plus the routers).
#include "expansion_stage.h"

#include "polymoe/allocation.h"
#include "polymoe/error.h"
#include "project_models.h"

namespace polymoe {

using namespace detail;

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

} // namespace polymoe
