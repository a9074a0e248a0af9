// Router statistics on a fixed probe set (METHOD.md section 8): per MoE layer x language x expert,
// the share of routing slots, the share of top-1 choices and the router entropy.
//
// Usage:
//   auto probe = polymoe::makeProbeSets(heldoutStreams, /*seqLen=*/128, /*sequences=*/4);
//   std::vector<polymoe::RouterStatRow> rows = polymoe::routerStatistics(*model, probe);
#pragma once

#include "models/llama.h"
#include "polymoe/expansion_jobs.h"
#include "sequence_batcher.h"

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace polymoe {

struct ProbeSet {
    std::string language;
    bool isNew = false;
    at::Tensor inputs; // (sequences, seqLen) int64
};

// The first `sequences` held-out sequences of every stream (fewer when the stream is short; a stream
// without one full sequence is left out).
std::vector<ProbeSet> makeProbeSets(const std::vector<LanguageStream> &heldout, int64_t seqLen, int64_t sequences);

// Runs each probe set through the model in eval mode without gradients (restoring the mode after)
// and reads every MoE block's routing: the routing actually used, so tokens that the classifier
// sends to expert 0 alone count one slot (expert 0) and top-1 expert 0. Empty for a dense model.
std::vector<RouterStatRow> routerStatistics(CausalLMImpl &model, const std::vector<ProbeSet> &probe);

} // namespace polymoe
