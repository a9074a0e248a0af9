// The MoE router of an upcycled layer (METHOD.md section 3): p = softmax(W_r h) over the experts, the
// top-k experts per token, and their probabilities renormalised to sum to 1.
//
// Usage:
//   polymoe::MoeRouter router(/*dModel=*/256, /*numExperts=*/3);  // top-k = min(2, N)
//   polymoe::Routing r = router->forward(h);                       // h (..., d) -> T = numel / d tokens
//   // r.topIdx (T, k) int64, r.topWeight (T, k): y_t = sum_j topWeight[t, j] * FFN_{topIdx[t, j]}(h_t)
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

namespace polymoe {

// The routing of T flattened tokens over N experts. Computed in fp32 (fp64 when the input is double).
struct Routing {
    at::Tensor logits;    // (T, N) W_r h, keeps the autograd graph (LPR loss, section 5)
    at::Tensor probs;     // (T, N) softmax(logits) (balance loss, section 4)
    at::Tensor topIdx;    // (T, k) int64, chosen experts, most probable first
    at::Tensor topWeight; // (T, k) chosen probabilities / their sum: each row sums to 1
};

// Top-k selection and renormalisation from router logits (T, N) (the second half of the router,
// shared with tests and the classifier path). k must be in [1, N].
Routing routingFromLogits(const at::Tensor &logits, int64_t topK);

// Router W_r: parameter "weight" (N, d), no bias, so that inside an MoE block registered as "gate"
// its name is HF Mixtral's "model.layers.L.mlp.gate.weight".
class MoeRouterImpl : public torch::nn::Module {
public:
    // topK <= 0 selects the default min(2, numExperts). Weight: Xavier-normal from the global RNG.
    MoeRouterImpl(int64_t dModel, int numExperts, int topK = 0);

    // h (..., d) -> routing of the T = h.numel() / d tokens, row-major over the leading dimensions.
    Routing forward(const at::Tensor &h);

    // Xavier-normal, std = sqrt(2 / (d + N)), drawn on the CPU from a generator seeded with `seed`
    // (deterministic whatever the device), then copied to the weight's device and dtype.
    void resetParameters(uint64_t seed);
    // The same from the global RNG.
    void resetParameters();

    int numExperts() const { return m_numExperts; }
    int topK() const { return m_topK; }
    void setTopK(int topK); // <= 0: the default min(2, N)

    at::Tensor weight; // (N, d)

private:
    int64_t m_dModel;
    int m_numExperts;
    int m_topK;
};
TORCH_MODULE(MoeRouter);

} // namespace polymoe
