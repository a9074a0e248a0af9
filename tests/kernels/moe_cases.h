// Routing cases shared by the kernel tests: top-k expert ids per token as a router makes them (k
// distinct experts), optionally skewed so that some experts get no token, and optionally with dropped
// slots (-1), as the classifier's hard routing produces.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kcheck {

struct RoutingCase {
    std::string name;
    int64_t tokens = 64;   // T
    int64_t dModel = 32;   // d
    int numExperts = 4;    // N
    int topK = 2;          // k
    bool skewed = false;   // only the first max(k, N/2) experts are ever chosen
    double dropShare = 0;  // share of the slots j >= 1 set to -1
};

inline std::vector<RoutingCase> routingCases()
{
    return {
        {.name = "T1 d8 N2 k1", .tokens = 1, .dModel = 8, .numExperts = 2, .topK = 1},
        {.name = "T7 d33 N3 k2 (odd d)", .tokens = 7, .dModel = 33, .numExperts = 3, .topK = 2},
        {.name = "T300 d64 N8 k2 skewed", .tokens = 300, .dModel = 64, .numExperts = 8, .topK = 2, .skewed = true},
        {.name = "T513 d256 N3 k2 dropped", .tokens = 513, .dModel = 256, .numExperts = 3, .topK = 2, .dropShare = 0.3},
        {.name = "T1000 d250 N16 k4", .tokens = 1000, .dModel = 250, .numExperts = 16, .topK = 4},
        {.name = "T4096 d1024 N8 k2", .tokens = 4096, .dModel = 1024, .numExperts = 8, .topK = 2},
        {.name = "T20000 d128 N64 k2 skewed dropped", .tokens = 20000, .dModel = 128, .numExperts = 64, .topK = 2,
         .skewed = true, .dropShare = 0.1},
    };
}

// (T, k) int64 on the CPU, deterministic in `seed`.
inline at::Tensor makeTopIdx(const RoutingCase &c, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    at::Tensor scores = at::rand({c.tokens, c.numExperts}, gen, at::kDouble);
    if (c.skewed) {
        const int64_t keep = std::max<int64_t>(c.topK, c.numExperts / 2);
        scores.narrow(1, 0, keep).add_(2.0); // always above the others: experts >= keep get nothing
    }
    at::Tensor idx = std::get<1>(scores.topk(c.topK, 1)).contiguous(); // k distinct, most probable first
    if (c.dropShare > 0 && c.topK > 1) {
        at::Tensor drop = at::rand({c.tokens, c.topK}, gen, at::kDouble).lt(c.dropShare);
        drop.select(1, 0).fill_(false); // a token keeps its first slot
        idx = at::where(drop, at::full_like(idx, -1), idx);
    }
    return idx;
}

// (T, k) float weights in (0, 1), each row summing to 1 over its kept slots (0 for dropped ones).
inline at::Tensor makeWeights(const at::Tensor &topIdx, at::ScalarType dtype, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    at::Tensor w = at::rand(topIdx.sizes(), gen, at::kDouble).add_(0.1);
    w = at::where(topIdx.ge(0), w, at::zeros_like(w));
    return (w / w.sum(1, true)).to(dtype);
}

// (rows, cols) of `dtype` from N(0, 1) on the CPU, deterministic in `seed`.
inline at::Tensor makeData(int64_t rows, int64_t cols, at::ScalarType dtype, uint64_t seed)
{
    at::Generator gen = at::detail::createCPUGenerator(seed);
    return at::randn({rows, cols}, gen, at::kDouble).to(dtype);
}

} // namespace kcheck
