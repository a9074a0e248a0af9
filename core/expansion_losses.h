// The losses of the two expansion stages (METHOD.md sections 4-6) as trainer LossFns, reading the
// routing that every MoE block keeps from the forward it just ran.
//
// Usage:
//   job.loss = polymoe::stage1Loss(model, /*balanceCoef=*/0.01);                 // LM + 0.01 * balance
//   job.loss = polymoe::stage2Loss(model, /*lprCoef=*/0.1, /*classifierCoef=*/0.1); // LM + 0.1 * LPR (+ cls)
#pragma once

#include "models/llama.h"
#include "moe_block.h"
#include "trainer.h"

#include <memory>
#include <utility>
#include <vector>

namespace polymoe {

// (layer index, block) of every MoE layer, in layer order.
std::vector<std::pair<int, std::shared_ptr<MoeBlockImpl>>> moeBlocks(const CausalLMImpl &model);

// LM cross-entropy + balanceCoef * mean over the MoE layers of the Switch balance loss. Metrics:
// "lm", "balance".
LossFn stage1Loss(CausalLM model, double balanceCoef);

// LM cross-entropy + lprCoef * mean over the MoE layers of the LPR loss on the tokens of the batch's
// old-language rows (+ classifierCoef * mean over the classifier layers of the classifier loss
// against each row's group, when some block has a classifier). Metrics: "lm", "lpr", "classifier",
// "classifier_accuracy".
LossFn stage2Loss(CausalLM model, double lprCoef, double classifierCoef);

} // namespace polymoe
