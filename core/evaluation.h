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
std::vector<PerplexityRow> evaluatePerplexity(CausalLMImpl &model, const std::vector<LanguageStream> &heldout,
                                              int64_t seqLen, int64_t maxTokens, int64_t batchSize = 16,
                                              const ProgressFn &progress = {}, std::stop_token stop = {});

} // namespace polymoe
