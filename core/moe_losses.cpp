// Balance, LPR and classifier losses (METHOD.md sections 4-6), per MoE layer i with N_i experts:
//
//   balance (stage 1):    L_balance = N_i * sum_e f_e * P_e
//                         f_e = share of the routing slots (token x top-k) sent to expert e
//                         P_e = mean router probability of e over the tokens
//                         (f_e is a count, so the gradient flows through P_e alone, as in Switch)
//   LPR (stage 2):        L_LPR = mean over old-language tokens of -log p_0(h) = -log softmax(W_r h)[0]
//                         (the stated loss; the reference code's double softmax is not copied: a Decision)
//   classifier (stage 2): cross-entropy of W_c (sum over the sequence of h) against the sequence's group
//
// Each is averaged over the MoE layers before its coefficient (0.01, 0.1, 0.1) weights it.
#include "moe_losses.h"

namespace polymoe {

namespace {

at::ScalarType lossDtype(at::ScalarType t)
{
    return t == at::kDouble ? at::kDouble : at::kFloat;
}

} // namespace

at::Tensor balanceLoss(const Routing &routing, int numExperts)
{
    const at::Tensor &probs = routing.probs;   // (T, N)
    const at::Tensor &topIdx = routing.topIdx; // (T, k)
    TORCH_CHECK(probs.dim() == 2 && probs.size(1) == numExperts, "balance loss: probs must be (tokens, ",
                numExperts, "), got ", probs.sizes());
    TORCH_CHECK(topIdx.dim() == 2 && topIdx.size(0) == probs.size(0), "balance loss: topIdx must be (",
                probs.size(0), ", k), got ", topIdx.sizes());
    const at::ScalarType dt = lossDtype(probs.scalar_type());
    if (probs.size(0) == 0 || topIdx.size(1) == 0)
        return probs.sum().to(dt) * 0.0;
    // f_e: share of the T*k slots sent to e, (N,)
    const at::Tensor f = at::bincount(topIdx.reshape({-1}), /*weights=*/{}, /*minlength=*/numExperts).to(dt) /
                         static_cast<double>(topIdx.numel());
    const at::Tensor P = probs.to(dt).mean(0); // (N,)
    return static_cast<double>(numExperts) * (f * P).sum();
}

at::Tensor lprLoss(const at::Tensor &routerLogits, const at::Tensor &oldMask)
{
    TORCH_CHECK(routerLogits.dim() == 2, "LPR loss: logits must be (tokens, experts), got ", routerLogits.sizes());
    TORCH_CHECK(oldMask.dim() == 1 && oldMask.size(0) == routerLogits.size(0), "LPR loss: mask must be (",
                routerLogits.size(0), ",), got ", oldMask.sizes());
    TORCH_CHECK(oldMask.scalar_type() == at::kBool, "LPR loss: mask must be bool");
    const at::ScalarType dt = lossDtype(routerLogits.scalar_type());
    const at::Tensor idx = oldMask.nonzero().squeeze(1);
    if (idx.numel() == 0)
        return routerLogits.sum().to(dt) * 0.0;
    const at::Tensor old = routerLogits.index_select(0, idx).to(dt); // (T_old, N)
    return -at::log_softmax(old, -1).select(1, 0).mean();
}

at::Tensor classifierLoss(const at::Tensor &logits, const at::Tensor &isNew)
{
    TORCH_CHECK(logits.dim() == 2 && logits.size(1) == 2, "classifier loss: logits must be (batch, 2), got ",
                logits.sizes());
    TORCH_CHECK(isNew.dim() == 1 && isNew.size(0) == logits.size(0), "classifier loss: labels must be (",
                logits.size(0), ",), got ", isNew.sizes());
    const at::ScalarType dt = lossDtype(logits.scalar_type());
    return at::nll_loss(at::log_softmax(logits.to(dt), -1), isNew.to(at::kLong));
}

} // namespace polymoe
