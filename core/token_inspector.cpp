// Token inspector: one eval-mode forward with the MoE blocks' last routing read back (sections 3, 6).
#include "polymoe/token_inspector.h"

#include "model_io.h"
#include "moe_block.h"
#include "polymoe/error.h"
#include "polymoe/project_tokenizer.h"
#include "polymoe/tokenizer.h"

#include <ATen/ATen.h>
#include <torch/types.h>

namespace polymoe {

TokenInspection inspectTokenIds(const std::filesystem::path &modelDir, const std::vector<int32_t> &idsIn)
{
    if (idsIn.empty())
        throw ConfigError("token inspector: no tokens");
    CausalLM lm = loadModelFolder(modelDir);
    lm->eval();
    const auto &cfg = lm->config();
    std::vector<int32_t> ids = idsIn;
    if (cfg.maxPositionEmbeddings > 0 && int64_t(ids.size()) > cfg.maxPositionEmbeddings)
        ids.resize(size_t(cfg.maxPositionEmbeddings));
    std::vector<int64_t> ids64;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= cfg.vocabSize)
            throw ConfigError("token inspector: token " + std::to_string(i) + " has id " + std::to_string(ids[i]) +
                              " outside the vocabulary of " + std::to_string(cfg.vocabSize));
        ids64.push_back(ids[i]);
    }
    const at::NoGradGuard noGrad;
    // (1, T) -> the logits are not needed, only each MoE block's routing of its (1, T, d) input.
    const at::Tensor input = torch::tensor(ids64, torch::kInt64).view({1, int64_t(ids64.size())});
    lm->forwardHidden(input);

    TokenInspection out;
    out.ids = ids;
    out.numLayers = int(lm->numLayers());
    for (int64_t l = 0; l < lm->numLayers(); ++l) {
        auto moe = std::dynamic_pointer_cast<MoeBlockImpl>(lm->layer(l)->mlp());
        if (!moe)
            continue;
        const MoeLastForward &r = moe->lastRouting();
        InspectedLayer layer;
        layer.layer = int(l);
        layer.numExperts = moe->numExperts();
        if (r.classifierLogits.defined())
            layer.judgedOld = r.classifierLogits[0].argmax().item<int64_t>() == 0;
        const at::Tensor idx = r.routing.topIdx.to(at::kLong).contiguous().cpu();    // (T, k)
        const at::Tensor w = r.routing.topWeight.to(at::kDouble).contiguous().cpu(); // (T, k)
        const int64_t t = idx.size(0), k = idx.size(1);
        const int64_t *pi = idx.data_ptr<int64_t>();
        const double *pw = w.data_ptr<double>();
        for (int64_t i = 0; i < t; ++i) {
            TokenRoute route;
            for (int64_t j = 0; j < k; ++j) {
                route.experts.push_back(int(pi[i * k + j]));
                route.weights.push_back(pw[i * k + j]);
            }
            layer.tokens.push_back(std::move(route));
        }
        moe->clearLastRouting();
        out.layers.push_back(std::move(layer));
    }
    return out;
}

TokenInspection inspectTokens(const ProjectStore &store, const std::string &modelName, const std::string &text)
{
    const auto model = store.model(modelName);
    if (!model)
        throw ConfigError("token inspector: no model '" + modelName + "' in the project");
    const auto tokenizer = loadProjectTokenizer(store);
    TokenInspection out = inspectTokenIds(store.modelPath(*model), tokenizer->encode(text));
    for (int32_t id : out.ids)
        out.pieces.push_back(tokenizer->idToPiece(id));
    return out;
}

} // namespace polymoe
