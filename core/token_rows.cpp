// Token rows by group (expansion_jobs.h, tokenRowStatistics): the embedding and LM-head row norms of
// the tokens that only the new languages use, those only the old ones use, and the shared ones. The
// gap between the first two is what stages 1 and 2 cannot close (they keep both matrices frozen,
// METHOD.md section 3) and what --train-new-token-rows trains.
#include "expansion_stage.h"

#include "model_io.h"
#include "polymoe/error.h"
#include "project_data.h"
#include "project_models.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace polymoe {

namespace {

double median(std::vector<double> v)
{
    if (v.empty())
        return std::numeric_limits<double>::quiet_NaN();
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + long(mid), v.end());
    const double hi = v[mid];
    if (v.size() % 2)
        return hi;
    return (*std::max_element(v.begin(), v.begin() + long(mid)) + hi) / 2;
}

} // namespace

std::vector<TokenRowGroup> tokenRowStatistics(const ProjectStore &store, const std::string &modelName)
{
    const ModelRecord rec = requireModel(store, modelName);
    CausalLM model = loadModelFolder(store.modelPath(rec));
    const ModelConfig &mc = model->config();
    const auto params = model->named_parameters();
    const at::Tensor emb = params["model.embed_tokens.weight"].detach().to(at::kFloat);
    const at::Tensor head = mc.tieWordEmbeddings ? emb : params["lm_head.weight"].detach().to(at::kFloat);
    const at::Tensor embNorm = emb.norm(2, 1).contiguous(), headNorm = head.norm(2, 1).contiguous();
    const float *en = embNorm.data_ptr<float>(), *hn = headNorm.data_ptr<float>();

    // The first wave against the old languages, and the same rule with the groups swapped.
    const detail::WavePlan wave = detail::wavePlan(store, std::nullopt, false);
    detail::WavePlan swapped = wave;
    std::swap(swapped.old, swapped.fresh);
    const auto streams = projectStreams(store, "train");
    const auto fresh = detail::newLanguageTokens(streams, wave, mc.vocabSize);
    const auto old = detail::newLanguageTokens(streams, swapped, mc.vocabSize);
    std::vector<bool> seen(size_t(mc.vocabSize), false);
    for (const auto &s : streams)
        for (const int32_t t : s.tokens)
            if (t >= 0 && t < mc.vocabSize)
                seen[size_t(t)] = true;

    std::vector<TokenRowGroup> out = {{"new-language tokens"}, {"old-language tokens"}, {"shared"}, {"unseen in training text"}};
    std::vector<std::vector<double>> e(4), h(4);
    for (int64_t t = 0; t < mc.vocabSize; ++t) {
        const size_t g = fresh[size_t(t)] ? 0 : old[size_t(t)] ? 1 : seen[size_t(t)] ? 2 : 3;
        ++out[g].tokens;
        e[g].push_back(en[t]);
        h[g].push_back(hn[t]);
    }
    for (size_t g = 0; g < out.size(); ++g) {
        out[g].medianEmbeddingNorm = median(e[g]);
        out[g].medianHeadNorm = median(h[g]);
    }
    return out;
}

} // namespace polymoe
