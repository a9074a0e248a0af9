// The auxiliary losses of MoE expansion: Switch balance loss (METHOD.md section 4), Language Priors
// Routing loss (section 5) and the old/new classifier's cross-entropy (section 6). All return a
// scalar fp32 (fp64 for double inputs) tensor that keeps the autograd graph of its inputs.
//
// Usage (one MoE layer, from MoeBlockImpl::lastRouting()):
//   at::Tensor lb  = balanceLoss(last.routing, numExperts);        // stage 1, weight 0.01
//   at::Tensor lpr = lprLoss(last.routing.logits, tokenIsOld);      // stage 2, weight 0.1
//   at::Tensor lc  = classifierLoss(last.classifierLogits, seqIsNew); // stage 2, weight 0.1
#pragma once

#include "moe_router.h"

#include <ATen/core/Tensor.h>

namespace polymoe {

// L_balance = N * sum_e f_e * P_e. f_e: fraction of the T*k routing slots (routing.topIdx) assigned to
// expert e (no gradient: it comes from a top-k choice); P_e: mean of routing.probs[:, e] over the T
// tokens. Equals 1 when both are uniform. T = 0 gives 0.
at::Tensor balanceLoss(const Routing &routing, int numExperts);

// L_LPR = mean over the tokens with oldMask set of -log softmax(routerLogits)[:, 0], the router's
// cross-entropy towards expert 0. routerLogits (T, N); oldMask (T,) bool. Decision (section 5): a
// single log-softmax of the logits, not the reference code's softmax-then-cross-entropy. With no old
// token: 0 (still connected to the graph, so backward() works).
at::Tensor lprLoss(const at::Tensor &routerLogits, const at::Tensor &oldMask);

// Cross-entropy of the classifier logits (B, 2) (class 0 = old, 1 = new) against isNew (B,) int64,
// mean over the batch.
at::Tensor classifierLoss(const at::Tensor &logits, const at::Tensor &isNew);

} // namespace polymoe
