// Upcycling a dense model into an MoE model (METHOD.md section 3): each layer's FFN becomes an MoE
// block whose experts start as exact copies of it, with a fresh router. Also lists the parameters that
// the expansion stages train (sections 4-6).
//
// Usage:
//   polymoe::upcycleModel(lm, {1, 3, 3, 2}, /*topK=*/2, /*seed=*/42); // layer 0 stays dense
//   for (auto &[name, p] : polymoe::expansionTrainable(lm, true, true, false)) ...  // stage 1
#pragma once

#include "models/llama.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace polymoe {

// expertsPerLayer[i] = N_i for every layer (size = numLayers). N_i >= 2 replaces the layer's dense
// SwiGLU FFN by an MoeBlock with N_i experts, all N_i copies of the original weights (expert 0 is the
// original FFN), top-k = min(topK, N_i) (topK <= 0: 2), and a router initialised Xavier-normal from a
// generator seeded by (seed, layer index): the same seed gives the same routers. N_i = 1 leaves the
// layer dense. The blocks take the device, dtype and training mode of the layer they replace.
// Throws ConfigError for a wrong count, N_i < 1, or a layer that is not dense (already upcycled).
void upcycleModel(CausalLM &model, const std::vector<int> &expertsPerLayer, int topK, uint64_t seed);

// Lifelong expansion (METHOD.md section 7): adds addPerLayer[i] >= 0 experts to layer i. A dense layer
// is upcycled as upcycleModel does (1 + add experts); an MoE layer keeps all its experts (they stay
// frozen) and gets `add` new copies of its expert 0, the original FFN, behind a fresh router of the
// new width (Xavier-normal, seeded by (seed, layer) as upcycleModel) and without a classifier (stage
// 2 trains a new one). Returns per layer the index of its first new expert (its old expert count; a
// layer that gets none returns its expert count, so no expert of it is trainable).
std::vector<int> growMoeModel(CausalLM &model, const std::vector<int> &addPerLayer, int topK, uint64_t seed);

// (name, parameter) as model->named_parameters() names them, in that order, for the new experts
// (index >= 1, never expert 0; with firstNewExpert, index >= firstNewExpert[layer]), and/or the
// routers ("...mlp.gate.weight"), and/or the classifiers ("...mlp.classifier.weight") of every MoE layer.
std::vector<std::pair<std::string, at::Tensor>> expansionTrainable(CausalLM &model, bool experts, bool routers,
                                                                   bool classifiers,
                                                                   const std::vector<int> &firstNewExpert = {});

} // namespace polymoe
