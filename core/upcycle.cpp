// Dense -> MoE upcycling and the trainable-parameter selection of the expansion stages (METHOD.md 3-6).
//
//   layer i with N_i >= 2:  FFN -> MoE block; expert 0 = the original FFN (frozen forever), experts
//                           1..N_i-1 = copies of it; a new router; N_i = 1 keeps the layer dense
//   stage 1 trains:         the new experts and the routers
//   stage 2 trains:         the routers (and the classifiers of section 6)
//   frozen in both:         embeddings, attention, norms, LM head, expert 0
//
// Copies start equal to the original, so right after upcycling the model computes what the dense one
// did (the renormalised top-k weights sum to 1 over identical experts); training moves them apart.
#include "upcycle.h"

#include "moe_block.h"
#include "polymoe/error.h"

#include <algorithm>
#include <memory>
#include <unordered_set>

namespace polymoe {

namespace {

// splitmix64: a well-mixed per-layer seed from (seed, layer).
uint64_t mixSeed(uint64_t seed, uint64_t layer)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (layer + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void copyFfn(const SwiGluFfnImpl &from, SwiGluFfnImpl &to)
{
    to.gate_proj->weight.copy_(from.gate_proj->weight);
    to.up_proj->weight.copy_(from.up_proj->weight);
    to.down_proj->weight.copy_(from.down_proj->weight);
}

} // namespace

void upcycleModel(CausalLM &model, const std::vector<int> &expertsPerLayer, int topK, uint64_t seed)
{
    const int64_t L = model->numLayers();
    if (static_cast<int64_t>(expertsPerLayer.size()) != L)
        throw ConfigError("upcycle: " + std::to_string(expertsPerLayer.size()) + " expert counts for a model with " +
                          std::to_string(L) + " layers");
    for (int64_t i = 0; i < L; ++i)
        if (expertsPerLayer[static_cast<size_t>(i)] < 1)
            throw ConfigError("upcycle: layer " + std::to_string(i) + ": " +
                              std::to_string(expertsPerLayer[static_cast<size_t>(i)]) + " experts (at least 1)");
    const int k = topK <= 0 ? 2 : topK;

    const at::NoGradGuard noGrad;
    for (int64_t i = 0; i < L; ++i) {
        const int n = expertsPerLayer[static_cast<size_t>(i)];
        if (n < 2)
            continue;
        DecoderLayer layer = model->layer(i);
        const auto dense = std::dynamic_pointer_cast<SwiGluFfnImpl>(layer->mlp());
        if (!dense)
            throw ConfigError("upcycle: layer " + std::to_string(i) + ": the FFN is not dense (already upcycled?)");
        const at::Tensor &w = dense->gate_proj->weight; // (ffn, d)
        auto block = std::make_shared<MoeBlockImpl>(w.size(1), w.size(0), n, std::min(k, n));
        block->to(w.device(), w.scalar_type());
        for (int e = 0; e < n; ++e)
            copyFfn(*dense, *block->expert(e));
        block->gate->resetParameters(mixSeed(seed, static_cast<uint64_t>(i)));
        if (!layer->is_training())
            block->eval();
        layer->replaceMlp(block);
    }
}

std::vector<int> growMoeModel(CausalLM &model, const std::vector<int> &addPerLayer, int topK, uint64_t seed)
{
    const int64_t L = model->numLayers();
    if (static_cast<int64_t>(addPerLayer.size()) != L)
        throw ConfigError("lifelong expansion: " + std::to_string(addPerLayer.size()) + " expert counts for a model with " +
                          std::to_string(L) + " layers");
    const int k = topK <= 0 ? 2 : topK;
    std::vector<int> firstNew(static_cast<size_t>(L));
    const at::NoGradGuard noGrad;
    for (int64_t i = 0; i < L; ++i) {
        const int add = addPerLayer[static_cast<size_t>(i)];
        if (add < 0)
            throw ConfigError("lifelong expansion: layer " + std::to_string(i) + ": cannot add " + std::to_string(add) +
                              " experts");
        DecoderLayer layer = model->layer(i);
        const auto old = std::dynamic_pointer_cast<MoeBlockImpl>(layer->mlp());
        if (!old) { // a dense layer: plain upcycling
            firstNew[static_cast<size_t>(i)] = 1;
            if (add == 0)
                continue;
            std::vector<int> one(static_cast<size_t>(L), 1);
            one[static_cast<size_t>(i)] = 1 + add;
            upcycleModel(model, one, k, seed);
            continue;
        }
        const int n = old->numExperts();
        firstNew[static_cast<size_t>(i)] = n;
        if (add == 0)
            continue;
        const at::Tensor &w = old->expert(0)->gate_proj->weight; // (ffn, d)
        auto block = std::make_shared<MoeBlockImpl>(w.size(1), w.size(0), n + add, std::min(k, n + add));
        block->to(w.device(), w.scalar_type());
        for (int e = 0; e < n + add; ++e)
            copyFfn(*old->expert(e < n ? e : 0), *block->expert(e));
        block->gate->resetParameters(mixSeed(seed, static_cast<uint64_t>(i)));
        if (!layer->is_training())
            block->eval();
        layer->replaceMlp(block);
    }
    return firstNew;
}

std::vector<std::pair<std::string, at::Tensor>> expansionTrainable(CausalLM &model, bool experts, bool routers,
                                                                   bool classifiers, const std::vector<int> &firstNewExpert)
{
    // Select by identity inside each MoE block, then report in named_parameters() order and naming.
    std::unordered_set<const void *> wanted;
    for (int64_t i = 0; i < model->numLayers(); ++i) {
        const auto block = std::dynamic_pointer_cast<MoeBlockImpl>(model->layer(i)->mlp());
        if (!block)
            continue;
        const int first = firstNewExpert.empty() ? 1 : std::max(1, firstNewExpert[static_cast<size_t>(i)]);
        if (experts)
            for (int e = first; e < block->numExperts(); ++e)
                for (const auto &p : block->expert(e)->parameters())
                    wanted.insert(p.unsafeGetTensorImpl());
        if (routers)
            wanted.insert(block->gate->weight.unsafeGetTensorImpl());
        if (classifiers && block->hasClassifier())
            wanted.insert(block->classifier->weight.unsafeGetTensorImpl());
    }
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto &item : model->named_parameters())
        if (wanted.count(item.value().unsafeGetTensorImpl()))
            out.emplace_back(item.key(), item.value());
    return out;
}

} // namespace polymoe
