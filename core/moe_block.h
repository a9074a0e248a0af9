// The MoE block that replaces a dense FFN after upcycling (METHOD.md sections 3 and 6): a router
// "gate" and N SwiGLU experts "experts.E", expert 0 the original FFN, plus the optional old/new
// classifier. Names follow HF Mixtral: model.layers.L.mlp.gate.weight,
// model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight, model.layers.L.mlp.classifier.weight.
//
// Usage:
//   polymoe::MoeBlock moe(/*dModel=*/256, /*dFfn=*/688, /*numExperts=*/3);  // top-2
//   at::Tensor y = moe->forward(h);        // h (batch, seq, d) -> (batch, seq, d), grouped dispatch
//   const MoeLastForward &r = moe->lastRouting();  // logits / probs / topIdx for the losses, with graph
//   moe->setClassifier(true);              // section 6: in eval mode "old" sequences use expert 0 only
// The forwards (grouped in ATen, grouped with the CUDA kernels, naive per token, per-expert mask) give
// the same result; only forward() is meant for work, the others are references for tests and the bench.
#pragma once

#include "models/llama.h"
#include "moe_router.h"

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <vector>

namespace polymoe {

// What the last forward routed, kept for the losses (sections 4-6) and the routing statistics.
// The tensors keep their autograd graph until the next forward or clearLastRouting().
struct MoeLastForward {
    // Over the T = batch * seq flattened tokens (row-major). logits and probs are the router's;
    // topIdx / topWeight are the routing actually used: a token of a sequence that the classifier sent
    // to expert 0 (eval mode) has topIdx all 0 and topWeight (1, 0, ...).
    Routing routing;
    at::Tensor classifierLogits; // (B, 2), class 0 = old, 1 = new; undefined without a classifier
    at::Tensor hardToExpert0;    // (T,) bool, tokens routed to expert 0 alone by the classifier; undefined if none
    int64_t batch = 0;           // B of the last input (1 for a (T, d) input)
    int64_t seqLen = 0;          // S of the last input (T for a (T, d) input)
};

class MoeBlockImpl : public FeedForwardImpl {
public:
    // Fresh experts (LibTorch's default Linear init) and router (Xavier-normal, global RNG).
    // topK <= 0: min(2, numExperts). Upcycling copies the original FFN into every expert (upcycle.h).
    MoeBlockImpl(int64_t dModel, int64_t dFfn, int numExperts, int topK = 0);

    // h (batch, seq, d) or (T, d) -> the same shape. Groups the T*k (token, expert) slots by expert and
    // runs one batched SwiGLU per expert on its tokens, then adds them back weighted: forwardKernels for
    // a CUDA input when the build has the kernels (and setUseKernels(true), the default), else
    // forwardGrouped.
    at::Tensor forward(const at::Tensor &h) override;
    // The grouped dispatch in ATen on any device: a stable sort by expert, index_select, index_add_.
    at::Tensor forwardGrouped(const at::Tensor &h);
    // The grouped dispatch with the CUDA kernels (kernels/: moe_permute, moe_combine and their
    // backwards); the expert GEMMs stay at::mm (cuBLAS). Throws CudaError when the build lacks them.
    at::Tensor forwardKernels(const at::Tensor &h);
    static bool cudaKernelsBuilt();
    void setUseKernels(bool use) { m_useKernels = use; } // false: CUDA inputs take forwardGrouped too
    bool useKernels() const { return m_useKernels; }
    // Reference: a loop over tokens and their k chosen experts, one token at a time. Slow.
    at::Tensor forwardNaive(const at::Tensor &h);
    // Baseline: a loop over experts, each run on ALL tokens, its output masked by the routing weight
    // (zero for tokens that did not choose it). N/k times the expert FLOPs of forward().
    at::Tensor forwardMasked(const at::Tensor &h);

    // Adds (true) or removes (false) the child "classifier" = Linear(d, 2, no bias), section 6,
    // initialised Xavier-normal (std sqrt(2 / (d + 2))) from the global generator. Applied
    // to the FFN input summed over the sequence; in eval mode argmax 0 ("old") sends every token of the
    // sequence to expert 0 with weight 1. In training mode the routing is the router's.
    void setClassifier(bool enabled);
    bool hasClassifier() const { return !classifier.is_empty(); }

    // Activation checkpointing: router logits and probabilities, and the classifier's logits when
    // there is a classifier, in this order.
    std::vector<at::Tensor> tensorsForLosses() const override;
    void adoptTensorsForLosses(const std::vector<at::Tensor> &tensors) override;

    const MoeLastForward &lastRouting() const { return m_last; }
    void clearLastRouting() { m_last = MoeLastForward{}; }

    int numExperts() const { return static_cast<int>(expertList.size()); }
    int topK() const { return gate->topK(); }
    int64_t dModel() const { return m_dModel; }
    int64_t dFfn() const { return m_dFfn; }
    SwiGluFfn expert(int index) const;

    MoeRouter gate{nullptr};
    torch::nn::ModuleList experts{nullptr};
    std::vector<SwiGluFfn> expertList; // the same modules as `experts`, typed
    torch::nn::Linear classifier{nullptr};

private:
    // Flattens h to (T, d), routes (router, then the classifier's hard decision in eval mode), records
    // m_last and returns x (T, d).
    at::Tensor route(const at::Tensor &h);

    int64_t m_dModel;
    int64_t m_dFfn;
    MoeLastForward m_last;
    bool m_useKernels = true;
};
TORCH_MODULE(MoeBlock);

} // namespace polymoe
