// Text generation for checking a model by eye: recompute the whole context per token (no KV cache),
// greedy at temperature 0, otherwise temperature + top-k sampling from a seeded generator.
#pragma once

#include "models/llama.h"

#include <cstdint>
#include <stop_token>
#include <vector>

namespace polymoe {

// Appends up to maxNewTokens tokens to promptIds and returns only the new ones. temperature 0 =
// greedy (argmax, lowest id on ties); topK 0 = the whole vocabulary. The same seed gives the same
// tokens. Stops early after emitting stopTokenId (>= 0), which is included. The context is cropped to
// the last config().maxPositionEmbeddings tokens. Runs without gradients in eval mode and restores
// the training flag. Throws ConfigError for an empty prompt, ids outside the vocabulary or negative
// settings, or more than kMaxNewTokens new tokens. A stop request ends it between two tokens with
// Cancelled.
constexpr int64_t kMaxNewTokens = int64_t(1) << 20;
std::vector<int64_t> generate(CausalLM &model, const std::vector<int64_t> &promptIds, int64_t maxNewTokens,
                              double temperature = 0.0, int64_t topK = 0, uint64_t seed = 0,
                              int64_t stopTokenId = -1, std::stop_token stop = {});

} // namespace polymoe
