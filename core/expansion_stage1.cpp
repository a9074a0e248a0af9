// Stage 1's set-up (METHOD.md sections 3 and 4): post-pretraining of upcycled experts on the new
// languages only.
//
//   upcycling: layer i with N_i >= 2 -> expert 0 = the original FFN (frozen), experts 1..N_i-1 copies
//   trainable: the new experts and the routers
//   loss:      LM cross-entropy + balanceCoef * mean over the MoE layers of N_i * sum_e f_e * P_e
//   length:    one epoch of the wave's new-language text unless the steps are set
//
// An already expanded model grows instead (section 7, expansion_lifelong.cpp).
#include "expansion_stage.h"

#include "expansion_losses.h"
#include "polymoe/allocation.h"
#include "polymoe/error.h"
#include "upcycle.h"

#include <algorithm>

namespace polymoe::detail {

namespace {

// The spec's allocation, else the latest one; it must add at least one expert.
AllocationRecord stageAllocation(const ProjectStore &store, const ExpansionStageSpec &spec, int numLayers)
{
    std::optional<AllocationRecord> alloc;
    if (spec.allocationId)
        alloc = store.allocation(*spec.allocationId);
    else if (auto all = store.allocations(); !all.empty())
        alloc = all.back();
    if (!alloc)
        throw ConfigError(store.path().string() + ": stage 1 needs an expert allocation; run 'allocate' first");
    validateAllocation(alloc->experts, numLayers);
    if (*std::max_element(alloc->experts.begin(), alloc->experts.end()) < 2)
        throw ConfigError("allocation '" + alloc->name + "' adds no expert");
    return *alloc;
}

// Beyond the papers: the embedding and LM-head rows of the new-language tokens train in stage 1.
void addNewTokenRows(const StageInputs &in, StagePlan &plan, CausalLM &model)
{
    const ModelConfig &mc = model->config();
    const std::vector<bool> fresh = newLanguageTokens(in.trainStreams, plan.wave, mc.vocabSize);
    const int64_t n = std::count(fresh.begin(), fresh.end(), true);
    at::Tensor rows = at::zeros({mc.vocabSize}, at::kBool);
    auto *r = rows.data_ptr<bool>();
    for (int64_t t = 0; t < mc.vocabSize; ++t)
        r[t] = fresh[size_t(t)];
    std::vector<std::string> names = {"model.embed_tokens.weight"};
    if (!mc.tieWordEmbeddings)
        names.push_back("lm_head.weight");
    const auto params = model->named_parameters();
    for (const auto &name : names) {
        plan.trainable.emplace_back(name, params[name]);
        plan.trainableRows[name] = rows;
    }
    plan.details["new_token_rows"] = n;
    plan.details["new_token_rows_max_old_share"] = kNewTokenMaxOldShare;
    plan.details["new_token_rows_parameters"] = n * mc.hiddenSize * int64_t(names.size());
}

} // namespace

std::vector<bool> newLanguageTokens(const std::vector<LanguageStream> &streams, const WavePlan &wave, int64_t vocabSize,
                                    double maxOldShare)
{
    std::vector<double> countNew(size_t(vocabSize), 0), countOld(size_t(vocabSize), 0);
    double totalNew = 0, totalOld = 0;
    const auto in = [](const std::vector<std::string> &v, const std::string &c) { return std::find(v.begin(), v.end(), c) != v.end(); };
    for (const auto &s : streams) {
        const bool isNew = in(wave.fresh, s.language);
        if (!isNew && !in(wave.old, s.language))
            continue;
        auto &counts = isNew ? countNew : countOld;
        for (const int32_t t : s.tokens)
            if (t >= 0 && t < vocabSize)
                counts[size_t(t)] += 1;
        (isNew ? totalNew : totalOld) += double(s.tokens.size());
    }
    std::vector<bool> out(size_t(vocabSize), false);
    for (size_t t = 0; t < out.size(); ++t) {
        if (countNew[t] == 0)
            continue;
        const double fNew = countNew[t] / totalNew, fOld = totalOld > 0 ? countOld[t] / totalOld : 0.0;
        out[t] = fOld <= maxOldShare * (fNew + fOld);
    }
    return out;
}

void planStage1(const StageInputs &in, ExpansionStageSpec &spec, StagePlan &plan)
{
    CausalLM model = in.model;
    // Lifelong expansion (section 7) of an expanded model: the next wave's languages are new, all
    // earlier ones old; every existing expert stays frozen.
    std::optional<int> wave;
    if (!in.inLayout.empty())
        wave = nextWave(in.store, in.inRec);
    const AllocationRecord alloc = stageAllocation(in.store, spec, int(model->numLayers()));
    spec.allocationId = alloc.id; // recorded with the run, so that a resume uses the same allocation
    plan.wave = wavePlan(in.store, wave, false);

    std::vector<int> firstNew; // per layer: the first trainable expert (empty: experts 1.. of an upcycled model)
    if (in.inLayout.empty()) {
        upcycleModel(model, alloc.experts, spec.topK, spec.routerSeed);
    } else {
        firstNew = growExpandedModel(model, alloc.experts, spec.topK, spec.routerSeed);
        plan.details["lifelong"] = true;
        plan.details["first_new_expert"] = firstNew;
    }

    // Section 4: new-language text only, the wave's languages equally.
    TrainConfig &cfg = plan.cfg;
    if (cfg.languageWeights.empty())
        for (const auto &c : plan.wave.fresh)
            cfg.languageWeights[c] = 1.0 / double(plan.wave.fresh.size());
    if (cfg.steps <= 0) {
        // One epoch of the new-language text (section 4).
        int64_t total = 0;
        for (const auto &c : plan.wave.fresh)
            if (const LanguageStream *s = findStream(in.trainStreams, c))
                total += int64_t(s->tokens.size());
        cfg.steps = std::max<int64_t>(1, total / (sequencesPerStep(cfg) * cfg.seqLen));
    }
    plan.trainable = expansionTrainable(model, /*experts=*/true, /*routers=*/true, /*classifiers=*/false, firstNew);
    if (spec.trainNewTokenRows)
        addNewTokenRows(in, plan, model);
    plan.loss = stage1Loss(model, spec.balanceCoef);
    plan.details["allocation_id"] = alloc.id;
    plan.details["allocation"] = alloc.name;
}

} // namespace polymoe::detail
