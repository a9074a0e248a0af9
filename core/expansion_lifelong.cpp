// Lifelong expansion (METHOD.md section 7): to add G2 to a model already expanded with G1, measure
// similarity on the expanded model with old = G0 ∪ G1, allocate new experts per layer, freeze every
// existing expert, re-initialise the routers with the new width, run stage 1 on G2 and stage 2 with
// replay of all earlier languages. Here: which languages a wave treats as old and new, and the
// growth of an expanded model.
#include "expansion_stage.h"

#include "polymoe/error.h"
#include "upcycle.h"

#include <algorithm>
#include <set>

namespace polymoe::detail {

namespace {

// Old languages are wave 0; a new language without a wave counts as wave 1.
int effectiveWave(const Language &l) { return l.group == LanguageGroup::Old ? 0 : std::max(l.wave, 1); }

} // namespace

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
    // In wave w the languages of every earlier wave are old (G0 ∪ G1 when G2 is added); later
    // waves are left out.
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

std::optional<RunRecord> producingRun(const ProjectStore &store, int64_t modelId)
{
    for (const auto &r : store.runs())
        if (r.modelOut == modelId)
            return r;
    return std::nullopt;
}

int nextWave(const ProjectStore &store, const ModelRecord &expanded)
{
    // The wave is recorded with the stage run that made the model, not with the model itself.
    const auto made = producingRun(store, expanded.id);
    const auto c = made ? nlohmann::json::parse(made->config, nullptr, false) : nlohmann::json();
    if (!c.is_object() || !c.contains("wave"))
        throw ConfigError("stage 1: model '" + expanded.name + "' is expanded but its wave is unknown (no run "
                          "of this project made it); lifelong expansion needs it");
    return c["wave"].get<int>() + 1;
}

std::vector<int> growExpandedModel(CausalLM &model, const std::vector<int> &experts, int topK, uint64_t seed)
{
    std::vector<int> add;
    for (int n : experts)
        add.push_back(n - 1); // the allocation's N_i - 1 new experts join the layer's existing ones
    // Existing experts stay (and stay frozen); the routers are re-initialised at the new width.
    return growMoeModel(model, add, topK, seed);
}

void groupByWave(std::vector<LanguageStream> &streams, const WavePlan &plan)
{
    // In wave w the languages of earlier waves are old everywhere (replay, the LPR mask, the
    // classifier's labels), not only for similarity; the group stored with a language is its group
    // in its own wave.
    for (auto &s : streams)
        s.isNew = std::find(plan.fresh.begin(), plan.fresh.end(), s.language) != plan.fresh.end();
}

} // namespace polymoe::detail
