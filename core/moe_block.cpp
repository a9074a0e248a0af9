// MoE block forward (METHOD.md sections 3 and 6): routing, then tokens grouped by expert so that each
// expert runs one batched SwiGLU over exactly the tokens that chose it. CUDA tensors go through the
// kernels of kernels/ when the build has them (moe_dispatch_cuda.h), others through ATen (sort, index_add_).
#include "moe_block.h"

#include "moe_dispatch_cuda.h"

#include <cmath>
#include <string>

namespace polymoe {

namespace {

at::ScalarType routingDtype(at::ScalarType t)
{
    return t == at::kDouble ? at::kDouble : at::kFloat;
}

} // namespace

MoeBlockImpl::MoeBlockImpl(int64_t dModel, int64_t dFfn, int numExperts, int topK)
    : m_dModel(dModel), m_dFfn(dFfn)
{
    TORCH_CHECK(dModel >= 1 && dFfn >= 1, "MoE block: sizes must be positive, got d ", dModel, ", ffn ", dFfn);
    TORCH_CHECK(numExperts >= 1, "MoE block: needs at least one expert, got ", numExperts);
    gate = register_module("gate", MoeRouter(dModel, numExperts, topK));
    experts = register_module("experts", torch::nn::ModuleList());
    for (int e = 0; e < numExperts; ++e) {
        expertList.emplace_back(dModel, dFfn);
        experts->push_back(expertList.back());
    }
}

SwiGluFfn MoeBlockImpl::expert(int index) const
{
    TORCH_CHECK(index >= 0 && index < numExperts(), "MoE block: expert ", index, " out of range (",
                numExperts(), " experts)");
    return expertList[static_cast<size_t>(index)];
}

void MoeBlockImpl::setClassifier(bool enabled)
{
    if (enabled == hasClassifier())
        return;
    if (enabled) {
        classifier = register_module(
            "classifier", torch::nn::Linear(torch::nn::LinearOptions(m_dModel, 2).bias(false)));
        // Xavier-normal like the routers (LayerMoE's code; std = sqrt(2 / (fan_in + fan_out))), from
        // the global generator so that a seeded stage 2 is reproducible.
        {
            const at::NoGradGuard noGrad;
            classifier->weight.normal_(0.0, std::sqrt(2.0 / double(m_dModel + 2)));
        }
        // Follow the block's device and dtype (the router's weight stands for them).
        classifier->to(gate->weight.device(), gate->weight.scalar_type());
    } else {
        unregister_module("classifier");
        classifier = torch::nn::Linear{nullptr};
    }
}

at::Tensor MoeBlockImpl::route(const at::Tensor &h)
{
    TORCH_CHECK(h.dim() == 2 || h.dim() == 3, "MoE block: input must be (batch, seq, d) or (tokens, d), got ",
                h.sizes());
    TORCH_CHECK(h.size(-1) == m_dModel, "MoE block: input has ", h.size(-1), " features, expected ", m_dModel);
    m_last = MoeLastForward{};
    m_last.batch = h.dim() == 3 ? h.size(0) : 1;
    m_last.seqLen = h.dim() == 3 ? h.size(1) : h.size(0);
    const at::Tensor x = h.reshape({-1, m_dModel}); // (T, d)
    m_last.routing = gate->forward(x);

    if (hasClassifier()) {
        // Section 6: the classifier sees the FFN input summed over the sequence, (B, d) -> (B, 2).
        const at::ScalarType dt = routingDtype(h.scalar_type());
        const at::Tensor summed = x.reshape({m_last.batch, m_last.seqLen, m_dModel}).to(dt).sum(1);
        m_last.classifierLogits = at::matmul(summed, classifier->weight.to(dt).t());
        if (!is_training()) {
            // Hard decision: argmax 0 = "old" -> every token of the sequence to expert 0, weight 1.
            const at::Tensor seqOld = m_last.classifierLogits.argmax(-1).eq(0); // (B,)
            const at::Tensor tokOld =
                seqOld.unsqueeze(1).expand({m_last.batch, m_last.seqLen}).reshape({-1}); // (T,)
            if (tokOld.any().item<bool>()) {
                Routing &r = m_last.routing;
                const at::Tensor rowOld = tokOld.unsqueeze(1); // (T, 1), broadcast over the k slots
                at::Tensor hardWeight = at::zeros_like(r.topWeight);
                hardWeight.select(1, 0).fill_(1.0);
                r.topIdx = at::where(rowOld, at::zeros_like(r.topIdx), r.topIdx);
                r.topWeight = at::where(rowOld, hardWeight, r.topWeight);
                m_last.hardToExpert0 = tokOld;
            }
        }
    }
    return x;
}

bool MoeBlockImpl::cudaKernelsBuilt() { return detail::moeCudaKernelsBuilt(); }

at::Tensor MoeBlockImpl::forward(const at::Tensor &h)
{
    if (h.is_cuda() && m_useKernels && detail::moeCudaKernelsBuilt())
        return forwardKernels(h);
    return forwardGrouped(h);
}

at::Tensor MoeBlockImpl::forwardKernels(const at::Tensor &h)
{
    TORCH_CHECK(h.is_cuda(), "MoE block: the CUDA kernels need a CUDA input, got one on ", h.device());
    const at::Tensor x = route(h); // (T, d)
    const Routing &r = m_last.routing;
    at::Tensor topIdx = r.topIdx;
    if (m_last.hardToExpert0.defined() && topIdx.size(1) > 1) {
        // Tokens sent to expert 0 alone keep only their first slot: the others are dropped (id -1).
        const at::Tensor later = at::arange(topIdx.size(1), topIdx.options()).gt(0).unsqueeze(0); // (1, k)
        const at::Tensor drop = m_last.hardToExpert0.unsqueeze(1).logical_and(later);              // (T, k)
        topIdx = at::where(drop, at::full_like(topIdx, -1), topIdx);
    }
    return detail::moeForwardCuda(x, topIdx, r.topWeight, expertList).view(h.sizes());
}

at::Tensor MoeBlockImpl::forwardGrouped(const at::Tensor &h)
{
    const at::Tensor x = route(h); // (T, d)
    const Routing &r = m_last.routing;
    const int64_t T = x.size(0);
    const int64_t k = r.topIdx.size(1);
    const int64_t N = numExperts();
    const auto longOpts = at::TensorOptions().dtype(at::kLong).device(x.device());

    // The T*k routing slots (token, expert, weight), token-major.
    at::Tensor slotToken = at::arange(T, longOpts).unsqueeze(1).expand({T, k}).reshape({-1});
    at::Tensor slotExpert = r.topIdx.reshape({-1});
    at::Tensor slotWeight = r.topWeight.reshape({-1});
    if (m_last.hardToExpert0.defined() && k > 1) {
        // Tokens sent to expert 0 alone keep only their first slot (the others carry weight 0).
        const at::Tensor firstSlot = at::arange(k, longOpts).eq(0).unsqueeze(0);                  // (1, k)
        const at::Tensor keep = m_last.hardToExpert0.logical_not().unsqueeze(1).logical_or(firstSlot); // (T, k)
        const at::Tensor kept = keep.reshape({-1}).nonzero().squeeze(1);
        slotToken = slotToken.index_select(0, kept);
        slotExpert = slotExpert.index_select(0, kept);
        slotWeight = slotWeight.index_select(0, kept);
    }

    // Group by expert: a stable sort of the slots by expert id, and each expert's slot count.
    const at::Tensor order = std::get<1>(at::sort(slotExpert, /*stable=*/true, /*dim=*/0, /*descending=*/false));
    const at::Tensor sortedToken = slotToken.index_select(0, order);
    const at::Tensor sortedWeight = slotWeight.index_select(0, order);
    const at::Tensor counts = at::bincount(slotExpert, /*weights=*/{}, /*minlength=*/N).to(at::kCPU);
    const int64_t *count = counts.data_ptr<int64_t>();

    at::Tensor out;
    int64_t offset = 0;
    for (int64_t e = 0; e < N; ++e) {
        const int64_t c = count[e];
        if (c == 0)
            continue;
        const at::Tensor tok = sortedToken.narrow(0, offset, c);     // (c,) token ids of expert e
        const at::Tensor xe = x.index_select(0, tok);                // (c, d)
        at::Tensor ye = expertList[static_cast<size_t>(e)]->forward(xe); // (c, d), one batched SwiGLU
        ye = ye * sortedWeight.narrow(0, offset, c).unsqueeze(1).to(ye.scalar_type());
        if (!out.defined())
            out = at::zeros({T, m_dModel}, ye.options());
        out.index_add_(0, tok, ye); // scatter back: y_t += w_{t,e} FFN_e(h_t)
        offset += c;
    }
    if (!out.defined()) // no token at all
        out = at::zeros({T, m_dModel}, x.options());
    return out.view(h.sizes());
}

at::Tensor MoeBlockImpl::forwardNaive(const at::Tensor &h)
{
    const at::Tensor x = route(h); // (T, d)
    const Routing &r = m_last.routing;
    const int64_t T = x.size(0);
    const int64_t k = r.topIdx.size(1);
    const at::Tensor idx = r.topIdx.to(at::kCPU).contiguous();
    const int64_t *id = idx.data_ptr<int64_t>();
    std::vector<at::Tensor> rows;
    rows.reserve(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
        const at::Tensor xt = x.narrow(0, t, 1); // (1, d)
        at::Tensor acc;
        for (int64_t j = 0; j < k; ++j) {
            const int64_t e = id[t * k + j];
            at::Tensor term = expertList[static_cast<size_t>(e)]->forward(xt);
            term = term * r.topWeight.narrow(0, t, 1).narrow(1, j, 1).to(term.scalar_type());
            acc = acc.defined() ? acc + term : term;
        }
        rows.push_back(acc);
    }
    if (rows.empty())
        return at::zeros_like(h);
    return at::cat(rows, 0).view(h.sizes());
}

at::Tensor MoeBlockImpl::forwardMasked(const at::Tensor &h)
{
    const at::Tensor x = route(h); // (T, d)
    const Routing &r = m_last.routing;
    at::Tensor out;
    for (int64_t e = 0; e < numExperts(); ++e) {
        // (T,) weight of expert e per token, 0 where it was not chosen.
        const at::Tensor we = (r.topWeight * r.topIdx.eq(e).to(r.topWeight.scalar_type())).sum(-1);
        at::Tensor ye = expertList[static_cast<size_t>(e)]->forward(x); // (T, d): every token
        ye = ye * we.unsqueeze(1).to(ye.scalar_type());
        out = out.defined() ? out + ye : ye;
    }
    return out.view(h.sizes());
}

std::vector<at::Tensor> MoeBlockImpl::tensorsForLosses() const
{
    std::vector<at::Tensor> out{m_last.routing.logits, m_last.routing.probs};
    if (m_last.classifierLogits.defined())
        out.push_back(m_last.classifierLogits);
    return out;
}

void MoeBlockImpl::adoptTensorsForLosses(const std::vector<at::Tensor> &t)
{
    TORCH_CHECK(t.size() == (m_last.classifierLogits.defined() ? 3u : 2u), "MoE block: ", t.size(),
                " tensors for the losses, not what the last forward kept");
    m_last.routing.logits = t[0];
    m_last.routing.probs = t[1];
    if (t.size() > 2)
        m_last.classifierLogits = t[2];
}

} // namespace polymoe
