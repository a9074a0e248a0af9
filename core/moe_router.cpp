// Router of an MoE block: softmax over experts, top-k, renormalisation (METHOD.md section 3).
//
//   p = softmax(W_r h)                          W_r: N_i x d, no bias, Xavier-normal initialisation
//   T = the k experts of largest p (k = 2, or N_i if smaller)
//   y = sum_{e in T} p_e / (sum_{e' in T} p_e') * FFN_e(h)
//
// The probabilities stay in float32 whatever the activations' dtype: the balance and LPR losses take
// their logarithms and means over many tokens.
#include "moe_router.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>

namespace polymoe {

namespace {

at::ScalarType routingDtype(at::ScalarType t)
{
    return t == at::kDouble ? at::kDouble : at::kFloat;
}

int defaultTopK(int topK, int numExperts)
{
    return topK <= 0 ? std::min(2, numExperts) : topK;
}

} // namespace

Routing routingFromLogits(const at::Tensor &logits, int64_t topK)
{
    TORCH_CHECK(logits.dim() == 2, "router logits must be (tokens, experts), got ", logits.sizes());
    TORCH_CHECK(topK >= 1 && topK <= logits.size(1), "top-k ", topK, " out of range for ", logits.size(1),
                " experts");
    Routing r;
    r.logits = logits;
    r.probs = at::softmax(logits, -1);                               // (T, N)
    auto [topP, topIdx] = at::topk(r.probs, topK, -1, /*largest=*/true, /*sorted=*/true); // (T, k)
    r.topIdx = topIdx;
    r.topWeight = topP / topP.sum(-1, /*keepdim=*/true);             // renormalised: rows sum to 1
    return r;
}

MoeRouterImpl::MoeRouterImpl(int64_t dModel, int numExperts, int topK)
    : m_dModel(dModel), m_numExperts(numExperts), m_topK(defaultTopK(topK, numExperts))
{
    TORCH_CHECK(dModel >= 1, "router: d_model must be positive, got ", dModel);
    TORCH_CHECK(numExperts >= 1, "router: needs at least one expert, got ", numExperts);
    TORCH_CHECK(m_topK >= 1 && m_topK <= numExperts, "router: top-k ", m_topK, " out of range for ", numExperts,
                " experts");
    weight = register_parameter("weight", at::empty({numExperts, dModel}));
    resetParameters();
}

void MoeRouterImpl::setTopK(int topK)
{
    const int k = defaultTopK(topK, m_numExperts);
    TORCH_CHECK(k >= 1 && k <= m_numExperts, "router: top-k ", k, " out of range for ", m_numExperts, " experts");
    m_topK = k;
}

void MoeRouterImpl::resetParameters(uint64_t seed)
{
    const at::NoGradGuard noGrad;
    const double stdev = std::sqrt(2.0 / static_cast<double>(m_dModel + m_numExperts)); // Xavier, gain 1
    at::Generator gen = at::detail::createCPUGenerator(seed);
    at::Tensor w = at::empty({m_numExperts, m_dModel}, at::kFloat);
    w.normal_(0.0, stdev, gen);
    weight.copy_(w);
}

void MoeRouterImpl::resetParameters()
{
    const at::NoGradGuard noGrad;
    const double stdev = std::sqrt(2.0 / static_cast<double>(m_dModel + m_numExperts));
    weight.normal_(0.0, stdev);
}

Routing MoeRouterImpl::forward(const at::Tensor &h)
{
    TORCH_CHECK(h.size(-1) == m_dModel, "router: input has ", h.size(-1), " features, expected ", m_dModel);
    const at::ScalarType dt = routingDtype(h.scalar_type());
    const at::Tensor x = h.reshape({-1, m_dModel}).to(dt);        // (T, d)
    const at::Tensor logits = at::matmul(x, weight.to(dt).t());   // (T, N), fp32
    return routingFromLogits(logits, m_topK);
}

} // namespace polymoe
