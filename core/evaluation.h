// Held-out perplexity per language (METHOD.md section 8).
#pragma once

#include "models/llama.h"
#include "polymoe/progress.h"
#include "polymoe/training.h"
#include "sequence_batcher.h"

#include <stop_token>
#include <vector>

namespace polymoe {

// Mean next-token cross-entropy over the scored targets (targetDocument: not a document's leading
// BOS) among the first maxTokens target positions of each stream (0 = all), in non-overlapping
// sequences of seqLen; perplexity = exp(loss), with its 95% interval from a bootstrap
// over the held-out documents (bootstrap.h).
// acrossRanks (a data-parallel run; every rank calls it with the same model and streams): rank r
// scores every world-th batch, the per-document sums are added up over the ranks, and every rank
// returns the rows one process would. The stop request is not checked then: the ranks must stay in
// step (the work is bounded by maxTokens).
std::vector<PerplexityRow> evaluatePerplexity(CausalLMImpl &model, const std::vector<LanguageStream> &heldout,
                                              int64_t seqLen, int64_t maxTokens, int64_t batchSize = 16,
                                              const ProgressFn &progress = {}, std::stop_token stop = {},
                                              bool acrossRanks = false);

} // namespace polymoe
